"""Intake: take files and folders into a case's evidence store and queue them.

Order of work (the predecessor's post-mortem): hash while copying, dedup, triage empty and
unrecognised files, and only then create each file's row — already pointing at its final,
content-addressed path — together with its job, in one transaction. Nothing is skipped
silently: every input path ends as a queued file, a duplicate, or a recorded failure.

A zip archive (recognised by its first bytes, nested ones too) is taken in member by member
(`evidence.archive`); a refused member is reported and audited (`intake_refused`) with why.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from casescope.config import Settings
from casescope.evidence.archive import ArchiveLimits, is_zip, store_archive
from casescope.evidence.store import Refused, StoredFile, describe_os_error, store_file
from casescope.jobs import queue
from casescope.model.db import Database
from casescope.model.enums import FileStatus, FileType, Operation
from casescope.model.tables import AuditRecord, Case, EvidenceFile, utcnow

logger = logging.getLogger(__name__)

REGISTER_BATCH = 200


@dataclass
class IntakeReport:
    queued: list[int] = field(default_factory=list)
    duplicates: list[tuple[str, int]] = field(default_factory=list)  # (path, existing file id)
    empty: list[int] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    @property
    def total(self) -> int:
        return len(self.queued) + len(self.duplicates) + len(self.empty) + len(self.rejected)


def walk_paths(paths: Iterable[Path]) -> Iterator[Path]:
    """Every regular file under the given files and folders, in a stable order."""
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path, followlinks=False):
                dirs.sort()
                for name in sorted(files):
                    candidate = Path(root, name)
                    if candidate.is_file():
                        yield candidate
        elif path.is_file():
            yield path
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")


def take_in(source: Path, case_dir: Path, settings: Settings) -> Iterator[StoredFile | Refused]:
    """Store one input: a loose file, or every member of a zip (detected by content)."""
    try:
        if is_zip(source):
            limits = ArchiveLimits.from_settings(settings)
            label = str(source.resolve())
            yield from store_archive(source, label, case_dir, settings.tmp_dir, limits)
        else:
            yield store_file(source, case_dir, settings.tmp_dir)
    except OSError as exc:
        logger.warning("cannot take in %s: %s", source, exc)
        yield Refused(str(source), describe_os_error(exc, "read"))


@dataclass(frozen=True)
class IntakeOptions:
    """How to take files in: the case, and an optional NDJSON/CSV field map (`--map`)."""

    case_id: int
    field_map: dict[str, str] = field(default_factory=dict)


def _register(
    session: Session,
    options: IntakeOptions,
    item: StoredFile | Refused,
    settings: Settings,
    report: IntakeReport,
) -> None:
    if isinstance(item, Refused):
        report.rejected.append((item.path, item.reason))
        session.add(
            AuditRecord(
                action="intake_refused",
                case_id=options.case_id,
                ok=False,
                detail=f"{item.path}: {item.reason}"[:4000],
            )
        )
        return
    existing = session.scalar(
        select(EvidenceFile.id).where(
            EvidenceFile.case_id == options.case_id, EvidenceFile.sha256 == item.sha256
        )
    )
    if existing is not None:
        report.duplicates.append((item.original, existing))
        return
    row = EvidenceFile(
        case_id=options.case_id,
        sha256=item.sha256,
        size_bytes=item.size,
        file_type=item.file_type,
        original_path=item.original,
        stored_path=str(item.stored),
        field_map=json.dumps(options.field_map) if options.field_map else "",
    )
    session.add(row)
    session.flush()
    if item.size == 0:
        row.status, row.hidden, row.completed_at = FileStatus.COMPLETED, True, utcnow()
        report.empty.append(row.id)
    elif item.file_type is FileType.UNKNOWN:
        row.status = FileStatus.FAILED
        row.error = "not recognised as evidence (EVTX, NDJSON/JSONL or CSV) by its content"
        report.rejected.append((item.original, row.error))
    else:
        queue.enqueue(session, row, Operation.FULL, max_attempts=settings.max_attempts)
        report.queued.append(row.id)


def _register_batch(
    db: Database,
    options: IntakeOptions,
    batch: list[StoredFile | Refused],
    settings: Settings,
    report: IntakeReport,
) -> None:
    with db.session() as session:
        for item in batch:
            _register(session, options, item, settings, report)
        session.add(
            AuditRecord(
                action="intake",
                case_id=options.case_id,
                events=len(batch),
                detail=f"{len(batch)} files registered",
            )
        )


def ingest_paths(
    db: Database,
    settings: Settings,
    case: Case,
    paths: Iterable[Path],
    *,
    field_map: dict[str, str] | None = None,
    on_file: Callable[[Path], None] | None = None,
    on_batch: Callable[[IntakeReport], None] | None = None,
) -> IntakeReport:
    """Store, register and queue every file under `paths` for `case`.

    Files are registered (and queued) in batches as intake goes, so workers can start on the
    first files while later ones are still being copied; `on_batch` is told after each.
    """
    settings.ensure_dirs()
    options = IntakeOptions(case.id, dict(field_map or {}))
    case_dir = settings.evidence_dir / str(case.id)
    report = IntakeReport()
    batch: list[StoredFile | Refused] = []
    for source in walk_paths(paths):
        for item in take_in(source, case_dir, settings):
            batch.append(item)
            if len(batch) >= REGISTER_BATCH:
                _register_batch(db, options, batch, settings, report)
                batch = []
                if on_batch is not None:
                    on_batch(report)
        if on_file is not None:
            on_file(source)
    if batch:
        _register_batch(db, options, batch, settings, report)
        if on_batch is not None:
            on_batch(report)
    return report

"""Intake: take files and folders into a case's evidence store and queue them.

Order of work (the predecessor's post-mortem): hash while copying, dedup, triage empty and
unrecognised files, and only then create each file's row — already pointing at its final,
content-addressed path — together with its job, in one transaction. Nothing is skipped
silently: every input path ends as a queued file, a duplicate, or a recorded failure.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from casescope.config import Settings
from casescope.jobs import queue
from casescope.model.db import Database
from casescope.model.enums import FileStatus, FileType, Operation
from casescope.model.tables import AuditRecord, Case, EvidenceFile, utcnow
from casescope.parse import detect_file_type

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024
REGISTER_BATCH = 200


@dataclass(frozen=True)
class StoredFile:
    original: Path
    stored: Path
    sha256: str
    size: int
    file_type: FileType


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


def store_file(source: Path, case_dir: Path, tmp_dir: Path) -> StoredFile:
    """Copy `source` into the case store under its sha256 (a name that cannot escape)."""
    digest = hashlib.sha256()
    tmp = tmp_dir / f"intake-{os.getpid()}-{id(source)}.part"
    size = 0
    with source.open("rb") as src, tmp.open("wb") as dst:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
    sha = digest.hexdigest()
    final = case_dir / sha[:2] / sha
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        tmp.unlink()
    else:
        tmp.replace(final)
    file_type = detect_file_type(final) if size else FileType.UNKNOWN
    return StoredFile(source.resolve(), final, sha, size, file_type)


@dataclass(frozen=True)
class IntakeOptions:
    """How to take files in: the case, and an optional NDJSON/CSV field map (`--map`)."""

    case_id: int
    field_map: dict[str, str] = field(default_factory=dict)


def _register(
    session: Session,
    options: IntakeOptions,
    item: StoredFile,
    settings: Settings,
    report: IntakeReport,
) -> None:
    existing = session.scalar(
        select(EvidenceFile.id).where(
            EvidenceFile.case_id == options.case_id, EvidenceFile.sha256 == item.sha256
        )
    )
    if existing is not None:
        report.duplicates.append((str(item.original), existing))
        return
    row = EvidenceFile(
        case_id=options.case_id,
        sha256=item.sha256,
        size_bytes=item.size,
        file_type=item.file_type,
        original_path=str(item.original),
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
        report.rejected.append((str(item.original), row.error))
    else:
        queue.enqueue(session, row, Operation.FULL, max_attempts=settings.max_attempts)
        report.queued.append(row.id)


def _register_batch(
    db: Database,
    options: IntakeOptions,
    batch: list[StoredFile],
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
    batch: list[StoredFile] = []
    for source in walk_paths(paths):
        try:
            batch.append(store_file(source, case_dir, settings.tmp_dir))
        except OSError as exc:
            report.rejected.append((str(source), f"cannot read: {exc}"))
            logger.warning("cannot take in %s: %s", source, exc)
        if on_file is not None:
            on_file(source)
        if len(batch) >= REGISTER_BATCH:
            _register_batch(db, options, batch, settings, report)
            batch = []
            if on_batch is not None:
                on_batch(report)
    if batch:
        _register_batch(db, options, batch, settings, report)
        if on_batch is not None:
            on_batch(report)
    return report

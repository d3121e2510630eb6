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
from casescope.errors import CaseClosedError, EvidenceError
from casescope.evidence.archive import ZIP_MAGICS, ArchiveLimits, store_archive
from casescope.evidence.store import Refused, StoredFile, describe_os_error, store_stream
from casescope.model.db import Database
from casescope.model.enums import AuditAction, CaseStatus, FileStatus, FileType, Operation
from casescope.model.tables import AuditRecord, Case, EvidenceFile, utcnow
from casescope.workqueue import operation_jobs

logger = logging.getLogger(__name__)

REGISTER_BATCH = 200
#: The first batch is small and each next one twice the last, up to REGISTER_BATCH: workers
#: start on the first files while the rest are copied, and a large intake still registers
#: in few transactions.
FIRST_REGISTER_BATCH = 16
#: Unrecognised files up to this size are read to tell a blank file (no events) from junk.
BLANK_CHECK_BYTES = 64 * 1024


@dataclass
class IntakeReport:
    queued: list[int] = field(default_factory=list)
    duplicates: list[tuple[str, int]] = field(default_factory=list)  # (path, existing file id)
    empty: list[int] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    operation_id: int | None = None  # the bulk operation the queued files belong to

    @property
    def total(self) -> int:
        return len(self.queued) + len(self.duplicates) + len(self.empty) + len(self.rejected)


def check_sources(paths: Iterable[Path]) -> list[Path]:
    """The inputs, each an existing file or folder; a clear error before anything is copied."""
    sources = list(paths)
    for path in sources:
        if not (path.is_dir() or path.is_file()):
            what = "not a file or folder" if os.path.lexists(path) else "no such file or folder"
            raise EvidenceError(f"{what}: {path} (nothing was taken in)")
    return sources


def walk_paths(paths: Iterable[Path]) -> Iterator[Path | Refused]:
    """Every regular file under the given files and folders, in a stable order, each by its
    absolute path with no link in it (the name recorded as the file's original path). What
    else a folder holds (symbolic links, pipes, devices) comes as Refused, with why: not
    followed, never skipped in silence. A link given by name is the analyst's choice and is
    followed."""
    for path in check_sources(paths):
        if path.is_dir():
            yield from _walk_folder(path, path.resolve())
        else:
            yield path.resolve()


def _walk_folder(folder: Path, resolved: Path) -> Iterator[Path | Refused]:
    """`folder` (named as given, for refusals) whose links-free path is `resolved`: its links
    to folders, then its files, then its folders, each in name order. Entry types come from
    the listing itself and a file's path from `resolved`: no stat nor path resolution per
    file, which were most of the system time of a bulk intake (`bench/bulk.py`)."""
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError as exc:
        yield Refused(str(folder), f"cannot list the folder: {exc.strerror}")
        return
    folders = [entry for entry in entries if entry.is_dir()]  # links to folders too
    for entry in folders:
        if entry.is_symlink():
            yield Refused(entry.path, "link to a folder: not followed")
    for entry in entries:
        if not entry.is_dir():
            yield _regular_or_refused(entry, resolved)
    for entry in folders:
        if not entry.is_symlink():
            yield from _walk_folder(Path(entry.path), resolved / entry.name)


def _regular_or_refused(entry: os.DirEntry[str], resolved: Path) -> Path | Refused:
    if entry.is_symlink():
        if not Path(entry.path).exists():
            return Refused(entry.path, "symbolic link to a missing target")
        return Refused(entry.path, "symbolic link: not followed (take in its target by name)")
    if not entry.is_file(follow_symlinks=False):
        return Refused(entry.path, "not a regular file (a pipe, socket or device)")
    return resolved / entry.name


def take_in(source: Path, case_dir: Path, settings: Settings) -> Iterator[StoredFile | Refused]:
    """Store one input (`source`: a path from `walk_paths`): a loose file, or every member of
    a zip (detected by content). The file is opened once to tell and to copy."""
    try:
        with source.open("rb", buffering=0) as src:
            archive = src.read(len(ZIP_MAGICS[0])) in ZIP_MAGICS
            if not archive:
                src.seek(0)
                stored = store_stream(src, str(source), case_dir, settings.tmp_dir)
        if archive:
            limits = ArchiveLimits.from_settings(settings)
            yield from store_archive(source, str(source), case_dir, settings.tmp_dir, limits)
        else:
            yield stored
    except OSError as exc:
        logger.warning("cannot take in %s: %s", source, exc)
        yield Refused(str(source), describe_os_error(exc, "read"))


@dataclass(frozen=True)
class IntakeOptions:
    """How to take files in: the case, and an optional NDJSON/CSV field map (`--map`)."""

    case_id: int
    field_map: dict[str, str] = field(default_factory=dict)
    operation_id: int | None = None


def _refused(session: Session, options: IntakeOptions, item: Refused, report: IntakeReport) -> None:
    report.rejected.append((item.path, item.reason))
    session.add(
        AuditRecord(
            action=AuditAction.INTAKE_REFUSED,
            case_id=options.case_id,
            ok=False,
            detail=f"{item.path}: {item.reason}"[:4000],
        )
    )


def _known_digests(session: Session, case_id: int, items: Iterable[StoredFile]) -> dict[str, int]:
    """Ids of the case's files that already have one of these digests (one query)."""
    digests = {item.sha256 for item in items}
    if not digests:
        return {}
    rows = session.execute(
        select(EvidenceFile.sha256, EvidenceFile.id).where(
            EvidenceFile.case_id == case_id, EvidenceFile.sha256.in_(digests)
        )
    )
    return {sha: file_id for sha, file_id in rows}


def _new_row(options: IntakeOptions, item: StoredFile) -> EvidenceFile:
    return EvidenceFile(
        case_id=options.case_id,
        sha256=item.sha256,
        size_bytes=item.size,
        file_type=item.file_type,
        original_path=item.original,
        stored_path=str(item.stored),
        field_map=json.dumps(options.field_map) if options.field_map else "",
    )


def _blank(item: StoredFile) -> bool:
    """A small unrecognised file of only blank lines (and a BOM): no events, not an error."""
    if item.file_type is not FileType.UNKNOWN or item.size > BLANK_CHECK_BYTES:
        return False
    content = item.head if len(item.head) >= item.size else Path(item.stored).read_bytes()
    return not content.removeprefix(b"\xef\xbb\xbf").strip()


def _triage(row: EvidenceFile, item: StoredFile, report: IntakeReport) -> bool:
    """Settle empty (or blank) files as hidden and unrecognised ones as rejected, at once;
    True for a file to queue."""
    if item.size == 0 or _blank(item):
        row.status, row.hidden, row.completed_at = FileStatus.COMPLETED, True, utcnow()
        report.empty.append(row.id)
        return False
    if item.file_type is FileType.UNKNOWN:
        row.status = FileStatus.REJECTED
        row.error = "not recognised as evidence (EVTX, NDJSON/JSONL or CSV) by its content"
        report.rejected.append((item.original, row.error))
        return False
    return True


def _register_batch(
    db: Database,
    options: IntakeOptions,
    batch: list[StoredFile | Refused],
    settings: Settings,
    report: IntakeReport,
) -> None:
    """Register a batch in one transaction: one duplicate query, one INSERT of files, one of
    jobs (a query and flushes per file were a large share of each small file's cost:
    `bench/bulk.py`)."""
    with db.session() as session:
        stored = [item for item in batch if isinstance(item, StoredFile)]
        known = _known_digests(session, options.case_id, stored)
        new: dict[str, EvidenceFile] = {}
        for item in stored:
            if item.sha256 not in known and item.sha256 not in new:
                new[item.sha256] = _new_row(options, item)
        session.add_all(new.values())
        session.flush()  # the new rows get their ids
        known.update((sha, row.id) for sha, row in new.items())
        to_queue: list[EvidenceFile] = []
        for item in batch:
            if isinstance(item, Refused):
                _refused(session, options, item, report)
            elif (row := new.pop(item.sha256, None)) is None:  # known, or earlier in the batch
                report.duplicates.append((item.original, known[item.sha256]))
            elif _triage(row, item, report):
                to_queue.append(row)
        operation_jobs.enqueue_new(
            session,
            to_queue,
            Operation.FULL,
            options.operation_id,
            max_attempts=settings.max_attempts,
        )
        report.queued.extend(row.id for row in to_queue)
        session.add(
            AuditRecord(
                action=AuditAction.INTAKE_REGISTERED,
                case_id=options.case_id,
                events=len(batch),
                detail=f"{len(batch)} files registered",
            )
        )


def _refuse_closed(db: Database, case_id: int) -> None:
    """A closed case is read-only: nothing is taken in until it is reopened."""
    with db.read() as session:
        case = session.get(Case, case_id)
    if case is not None and case.status is CaseStatus.CLOSED:
        raise CaseClosedError(case.name)


def ingest_paths(
    db: Database,
    settings: Settings,
    case: Case,
    paths: Iterable[Path],
    *,
    field_map: dict[str, str] | None = None,
    on_file: Callable[[Path], None] | None = None,
    on_batch: Callable[[IntakeReport], None] | None = None,
    operation_id: int | None = None,
) -> IntakeReport:
    """Store, register and queue every file under `paths` for `case`.

    Files are registered (and queued) in batches as intake goes, so workers can start on the
    first files while later ones are still being copied; `on_batch` is told after each.
    The jobs belong to the bulk operation `operation_id`, when given (services/operations.py).
    """
    _refuse_closed(db, case.id)
    settings.ensure_dirs()
    options = IntakeOptions(case.id, dict(field_map or {}), operation_id)
    case_dir = settings.evidence_dir / str(case.id)
    report = IntakeReport(operation_id=operation_id)
    batch: list[StoredFile | Refused] = []
    batch_size = FIRST_REGISTER_BATCH
    for source in walk_paths(paths):
        items = [source] if isinstance(source, Refused) else take_in(source, case_dir, settings)
        for item in items:
            batch.append(item)
            if len(batch) >= batch_size:
                _register_batch(db, options, batch, settings, report)
                batch, batch_size = [], min(2 * batch_size, REGISTER_BATCH)
                if on_batch is not None:
                    on_batch(report)
        if on_file is not None and not isinstance(source, Refused):
            on_file(source)
    if batch:
        _register_batch(db, options, batch, settings, report)
        if on_batch is not None:
            on_batch(report)
    return report

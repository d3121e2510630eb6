"""Deleting a case: every row of it in every table, its events in the index, the evidence
files and segments no other case uses — and nothing of any other case.

Which rows are the case's is read from the schema, not listed by hand, so a table added
later is covered without touching this module: a row is the case's when its table has a
`case_id` column equal to the case, a `file_id` column naming one of the case's evidence
files, or a foreign key to a row that is the case's (jobs through their file, ...). Rows
are deleted children first, in one transaction, together with the `case_deletions` record
(which also keeps SQLite from giving the id to a new case) and one `case.delete` audit row,
the only row that keeps the deleted case's id.

The caller holds the embedded index alone (`IndexHandle.write()` in `serve`, the owner lock
in the CLI), so no loader can load the case's files again while they are deleted. An index
other processes load into (team mode: a ClickHouse server) has no owner: the deletion holds
the load claims of every file of the case (store/load_claims.py) from before its rows go
until the index rows are gone, waiting a while for a loader that holds some, so none can
insert them after the index was cleaned. Disk comes
last: a crash after the commit leaves the paths in `case_deletions.leftovers` and the next
deletion (or `finish_deletions`) removes them and the index rows.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Table, delete, func, or_, select, update
from sqlalchemy.orm import Session

from casescope.config import Settings
from casescope.errors import CasescopeError, NotFoundError
from casescope.model.db import Database
from casescope.model.enums import AuditAction, JobState
from casescope.model.tables import AuditRecord, Base, Case, DeletedCase, EvidenceFile, Job, Segment
from casescope.services.case_lifecycle import CaseBusyError
from casescope.store.load_claims import load_claims
from casescope.store.loader import prune_bundles, prune_piece_dirs

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

logger = logging.getLogger(__name__)

#: How long a deletion waits for loaders holding some of the case's files (team mode).
CLAIM_WAIT_SECONDS = 30.0
CLAIM_POLL_SECONDS = 0.2

#: Tables whose rows are never a case's, whatever their columns say.
_NOT_CASE_ROWS = frozenset({DeletedCase.__tablename__, Segment.__tablename__})


@dataclass
class DeletionReport:
    """What a deletion removed (or, from `deletion_preview`, would remove)."""

    case_id: int
    name: str
    #: Rows per table (tables with none left out).
    rows: dict[str, int] = field(default_factory=dict)
    index_rows: int = 0
    evidence_files: int = 0
    segments: int = 0
    bytes_freed: int = 0

    def as_dict(self) -> dict:
        return {
            "case_id": self.case_id,
            "name": self.name,
            "rows": self.rows,
            "index_rows": self.index_rows,
            "evidence_files": self.evidence_files,
            "segments": self.segments,
            "bytes_freed": self.bytes_freed,
        }


def case_rows(case_id: int) -> dict[Table, ColumnElement[bool]]:
    """Each table holding rows of the case, with the condition that selects them (parents
    before children)."""
    cases = Case.__table__
    files = EvidenceFile.__table__
    # The files first: tables without foreign keys (audit) may sort before them.
    owned: dict[Table, ColumnElement[bool]] = {
        cases: cases.c.id == case_id,
        files: files.c.case_id == case_id,
    }
    for table in Base.metadata.sorted_tables:
        if table in (cases, files) or table.name in _NOT_CASE_ROWS:
            continue
        parts: list[ColumnElement[bool]] = []
        if "case_id" in table.c:
            parts.append(table.c.case_id == case_id)
        if "file_id" in table.c:
            parts.append(table.c.file_id.in_(select(files.c.id).where(owned[files])))
        for fk in table.foreign_keys:
            parent = fk.column.table
            if parent is not table and parent in owned and fk.parent.name != "case_id":
                parts.append(fk.parent.in_(select(fk.column).where(owned[parent])))
        if parts:
            owned[table] = or_(*parts)
    return owned


def _count_rows(session: Session, case_id: int) -> dict[str, int]:
    counts = {}
    for table, where in case_rows(case_id).items():
        if n := session.scalar(select(func.count()).select_from(table).where(where)) or 0:
            counts[table.name] = n
    return counts


def _get_case(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise NotFoundError(f"no case {case_id}")
    return case


def deletion_preview(db: Database, index: EventIndex | None, case_id: int) -> DeletionReport:
    """What deleting the case would remove (index rows only when an index is given)."""
    with db.read() as session:
        report = DeletionReport(case_id, _get_case(session, case_id).name)
        report.rows = _count_rows(session, case_id)
        paths = _leftovers(session, case_id)
    report.evidence_files = len(paths["evidence"])
    report.segments = len(paths["segments"])
    report.index_rows = index.count(case_id) if index is not None else 0
    return report


def _leftovers(session: Session, case_id: int) -> dict[str, list[str]]:
    """The case's evidence files and segments on disk that no other case uses."""
    mine = EvidenceFile.case_id == case_id
    others = select(EvidenceFile).where(EvidenceFile.case_id != case_id).subquery()
    evidence = session.scalars(
        select(EvidenceFile.stored_path)
        .where(mine, EvidenceFile.stored_path.not_in(select(others.c.stored_path)))
        .distinct()
    ).all()
    # A segment is shared by every file with the same bytes: kept while another case has
    # those bytes (its files read or re-use it).
    segments = session.scalars(
        select(Segment.path).where(
            Segment.sha256.in_(select(EvidenceFile.sha256).where(mine)),
            Segment.sha256.not_in(select(others.c.sha256)),
        )
    ).all()
    return {"evidence": list(evidence), "segments": list(segments)}


def _delete_rows(session: Session, case_id: int) -> dict[str, int]:
    """Delete every row of the case, children first; rows deleted per table."""
    counts: dict[str, int] = {}
    owned = case_rows(case_id)
    doomed_segments = select(Segment.id).where(
        Segment.sha256.in_(select(EvidenceFile.sha256).where(EvidenceFile.case_id == case_id)),
        Segment.sha256.not_in(select(EvidenceFile.sha256).where(EvidenceFile.case_id != case_id)),
    )
    segment_ids = list(session.scalars(doomed_segments))
    for table in reversed(list(owned)):
        if n := session.execute(delete(table).where(owned[table])).rowcount:
            counts[table.name] = n
    if segment_ids:
        session.execute(delete(Segment).where(Segment.id.in_(segment_ids)))
        counts[Segment.__tablename__] = len(segment_ids)
    return counts


def _check(session: Session, case_id: int, confirm: str) -> Case:
    case = _get_case(session, case_id)
    if confirm != case.name:
        raise CasescopeError("to delete a case, type its name exactly as confirmation")
    running = session.scalar(
        select(func.count(Job.id))
        .join(EvidenceFile, EvidenceFile.id == Job.file_id)
        .where(EvidenceFile.case_id == case_id, Job.state == JobState.RUNNING)
    )
    if running:
        raise CaseBusyError(
            f"{running} file(s) of this case are being processed: cancel its jobs or wait "
            "for them, then delete the case"
        )
    return case


@contextmanager
def _files_claimed(
    db: Database, index: EventIndex, case_id: int, wait_seconds: float
) -> Iterator[None]:
    """The load claims of the case's files, for an index other processes load into; a
    CaseBusyError when a loader still holds some after `wait_seconds`."""
    if not index.shared_by_processes:
        yield
        return
    with db.read() as session:
        ids = list(session.scalars(select(EvidenceFile.id).where(EvidenceFile.case_id == case_id)))
    with load_claims(db) as claims, claims.round(index) as claimed:
        deadline = time.monotonic() + wait_seconds
        while missing := len(ids) - len(claimed.take(ids)):
            if time.monotonic() > deadline:
                raise CaseBusyError(
                    f"{missing} file(s) of this case are being loaded into the index by "
                    "another process: try again in a moment"
                )
            time.sleep(CLAIM_POLL_SECONDS)
        yield


def delete_case(
    db: Database,
    index: EventIndex,
    settings: Settings,
    case_id: int,
    confirm: str,
    actor: str,
    *,
    claim_wait_seconds: float = CLAIM_WAIT_SECONDS,
) -> DeletionReport:
    """Delete the case (see the module's docstring); `confirm` must be its exact name."""
    finish_deletions(db, index, settings)
    with _files_claimed(db, index, case_id, claim_wait_seconds):
        return _delete(db, index, settings, case_id, confirm, actor)


def _delete(
    db: Database, index: EventIndex, settings: Settings, case_id: int, confirm: str, actor: str
) -> DeletionReport:
    with db.session() as session:
        case = _check(session, case_id, confirm)
        report = DeletionReport(case_id, case.name)
        paths = _leftovers(session, case_id)
        report.rows = _delete_rows(session, case_id)
        report.evidence_files = len(paths["evidence"])
        report.segments = len(paths["segments"])
        report.index_rows = index.count(case_id)
        summary = json.dumps(report.as_dict())
        session.add(
            DeletedCase(
                id=case_id,
                name=report.name,
                deleted_by=actor[:100],
                summary=summary,
                leftovers=json.dumps(paths),
            )
        )
        session.add(
            AuditRecord(
                actor=actor[:100], action=AuditAction.CASE_DELETE, case_id=case_id, detail=summary
            )
        )
    report.bytes_freed = _clean(db, index, settings, case_id, paths)
    logger.info("case %d (%s) deleted by %s: %s", case_id, report.name, actor, report.rows)
    return report


def _remove(path: Path) -> int:
    """Remove a file or a directory of pieces; the bytes it held."""
    try:
        if path.is_dir():
            size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
            shutil.rmtree(path)
            return size
        size = path.stat().st_size
        path.unlink()
        return size
    except FileNotFoundError:
        return 0


def _remove_empty_dirs(top: Path) -> None:
    if not top.is_dir():
        return
    for directory in sorted((p for p in top.rglob("*") if p.is_dir()), reverse=True):
        if not any(directory.iterdir()):
            directory.rmdir()
    if not any(top.iterdir()):
        top.rmdir()


def _clean(
    db: Database, index: EventIndex, settings: Settings, case_id: int, paths: dict[str, list[str]]
) -> int:
    """Remove the case's index rows and files on disk; mark the deletion cleaned."""
    index.delete_case(case_id)
    freed = sum(_remove(Path(p)) for p in paths["evidence"] + paths["segments"])
    _remove_empty_dirs(settings.evidence_dir / str(case_id))
    prune_piece_dirs(db, settings)
    prune_bundles(db, settings)
    with db.session() as session:
        session.execute(update(DeletedCase).where(DeletedCase.id == case_id).values(cleaned=True))
    return freed


def finish_deletions(db: Database, index: EventIndex, settings: Settings) -> int:
    """Finish deletions a crash cut short after their commit; how many."""
    with db.read() as session:
        unfinished = session.execute(
            select(DeletedCase.id, DeletedCase.leftovers).where(DeletedCase.cleaned.is_(False))
        ).all()
    for case_id, leftovers in unfinished:
        _clean(db, index, settings, case_id, json.loads(leftovers or "{}") or _NO_PATHS)
    return len(unfinished)


_NO_PATHS: dict[str, list[str]] = {"evidence": [], "segments": []}

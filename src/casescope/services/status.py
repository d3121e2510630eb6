"""What is going on: files per status, events, failures, queue depth and live workers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from casescope.jobs.launcher import PoolFailure, pool_failure_since_work
from casescope.jobs.registry import HostInfo, WorkerInfo, hosts_of, live_workers
from casescope.model.db import Database
from casescope.model.enums import FileStatus, IndexState, JobState
from casescope.model.tables import EvidenceFile, Job, LoadPiece
from casescope.services.progress import FileSet

if TYPE_CHECKING:
    from casescope.store.index import EventIndex


@dataclass(frozen=True)
class Failure:
    file_id: int
    path: str
    error: str


@dataclass(frozen=True)
class Warned:
    """A file that kept what could be read, and what could not (parse warnings, a line each)."""

    file_id: int
    path: str
    status: str
    warnings: str


@dataclass
class StatusReport:
    files_by_status: dict[str, int] = field(default_factory=dict)
    hidden_files: int = 0
    awaiting_index_load: int = 0
    events_parsed: int = 0
    #: The events in the index: counted there when `collect_status` is given the index,
    #: else as the metadata DB records the loads (`indexed_events`).
    events_indexed: int | None = None
    queue: dict[str, int] = field(default_factory=dict)
    workers: list[WorkerInfo] = field(default_factory=list)
    #: The hosts of the live workers, each with the files its workers hold.
    hosts: list[HostInfo] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    files_with_warnings: int = 0
    warnings: list[Warned] = field(default_factory=list)  # the first max_failures of them
    #: Why no worker runs while files wait: the pool kept dying at its start (its error).
    pool_failure: PoolFailure | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _file_filter(case_id: int | None, files: FileSet | None) -> list:
    where = [EvidenceFile.case_id == case_id] if case_id is not None else []
    if files is not None:
        where.append(EvidenceFile.id.between(files.first_id, files.last_id))
    return where


def collect_status(
    db: Database,
    *,
    case_id: int | None,
    index: EventIndex | None,
    stale_after: float,
    max_failures: int = 50,
    files: FileSet | None = None,
) -> StatusReport:
    """The state of every file (or of a case's, or of the case's files in the id range of
    `files`, one run's)."""
    report = StatusReport()
    where = _file_filter(case_id, files)
    with db.read() as session:
        for status, count in session.execute(
            select(EvidenceFile.status, func.count()).where(*where).group_by(EvidenceFile.status)
        ):
            report.files_by_status[FileStatus(status).value] = count
        report.hidden_files = (
            session.scalar(select(func.count()).where(EvidenceFile.hidden, *where)) or 0
        )
        report.awaiting_index_load = (
            session.scalar(
                select(func.count()).where(EvidenceFile.index_state == IndexState.PENDING, *where)
            )
            or 0
        )
        # int(): PostgreSQL's SUM of a BIGINT is NUMERIC, a Decimal that JSON output refuses
        report.events_parsed = int(
            session.scalar(
                select(func.coalesce(func.sum(EvidenceFile.event_count), 0)).where(*where)
            )
            or 0
        )
        job_query = select(Job.state, func.count()).group_by(Job.state)
        if case_id is not None:
            job_query = job_query.join(EvidenceFile, EvidenceFile.id == Job.file_id).where(*where)
        report.queue = {JobState(s).value: n for s, n in session.execute(job_query)}
        failed = session.execute(
            select(EvidenceFile.id, EvidenceFile.original_path, EvidenceFile.error)
            .where(EvidenceFile.status == FileStatus.FAILED, *where)
            .order_by(EvidenceFile.id)
            .limit(max_failures)
        ).all()
        report.failures = [Failure(i, p, e or "") for i, p, e in failed]
        _collect_warnings(session, report, where, max_failures)
        if index is None:
            report.events_indexed = indexed_events(session, where)
    report.workers = live_workers(db, stale_after)
    report.hosts = hosts_of(db, report.workers)
    if not report.workers:
        report.pool_failure = pool_failure_since_work(db)
    if index is not None:
        report.events_indexed = index.count(case_id)
    return report


def indexed_events(session: Session, where: list) -> int:
    """The events the index holds as the metadata DB records its loads: those of the files
    loaded, and of the load pieces loaded of files still parsing (store/pieces.py). A file
    whose re-index failed keeps its earlier events, loaded, and they count."""
    loaded = session.scalar(
        select(func.coalesce(func.sum(EvidenceFile.event_count), 0)).where(
            EvidenceFile.index_state == IndexState.LOADED, *where
        )
    )
    pieces = session.scalar(
        select(func.coalesce(func.sum(LoadPiece.seq_to - LoadPiece.seq_from), 0))
        .join(EvidenceFile, EvidenceFile.id == LoadPiece.file_id)
        .where(LoadPiece.loaded.is_(True), EvidenceFile.index_state != IndexState.LOADED, *where)
    )
    # int(): PostgreSQL's SUM of a BIGINT is NUMERIC, a Decimal that JSON output refuses
    return int(loaded or 0) + int(pieces or 0)


def _collect_warnings(session: Session, report: StatusReport, where: list, most: int) -> None:
    has_warnings = [EvidenceFile.warnings != "", *where]
    report.files_with_warnings = session.scalar(select(func.count()).where(*has_warnings)) or 0
    rows = session.execute(
        select(
            EvidenceFile.id, EvidenceFile.original_path, EvidenceFile.status, EvidenceFile.warnings
        )
        .where(*has_warnings)
        .order_by(EvidenceFile.id)
        .limit(most)
    )
    report.warnings = [Warned(i, p, FileStatus(st).value, w) for i, p, st, w in rows]

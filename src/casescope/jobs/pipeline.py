"""`process_file(ctx, job)`: one worker takes one file through every step (DESIGN decision 1).

    full / reindex:  estimating → indexing → sigma → ioc → completed
    sigma_only:      sigma → completed      (re-reads the segment; no re-parse)
    ioc_only:        ioc → completed        (likewise)

Sigma and IOC analyzers see every batch during indexing (one pass over the data); their
steps then persist what they found. A step that raises fails the attempt; the queue decides
whether to retry.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import pyarrow as pa
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from casescope.config import Settings
from casescope.detect.ruleset import ActiveRules
from casescope.errors import PermanentError
from casescope.hunt import IocMatcher
from casescope.jobs import queue
from casescope.jobs.steps import StepLog, StepResult, StepScope, advance
from casescope.model.db import Database
from casescope.model.enums import FileStatus, FileType, IndexState, Operation
from casescope.model.tables import EvidenceFile, Segment, utcnow
from casescope.parse import ParseReport, estimate_events, iter_batches
from casescope.parse.schema import PARSER_VERSION
from casescope.store.segments import SegmentWriter, read_segment, segment_path, segment_variant

logger = logging.getLogger(__name__)

MAX_WARNING_CHARS = 20_000
#: Files estimated above this many events commit their "indexing" status before parsing;
#: smaller ones skip that write (at 10,000+ small files every transaction counts).
LIVE_STATUS_EVENTS = 20_000


class Analyzer(Protocol):
    """Sees every batch of a file; persists its findings in its own step."""

    status: FileStatus

    @property
    def wants_events(self) -> bool:
        """False when re-reading the segment would be for nothing (no rules/IOCs to run)."""
        ...

    def consume(self, batch: pa.RecordBatch) -> None: ...
    def finish(self) -> None:
        """Called after the last batch (analyzers may buffer batches)."""
        ...

    def persist(self, session: Session, file_id: int) -> int: ...


@dataclass
class Progress:
    """Shared with the worker's heartbeat thread, which reports it to the DB."""

    events: int = 0


@dataclass
class WorkerContext:
    settings: Settings
    db: Database
    worker_id: str
    progress: Progress = field(default_factory=Progress)
    rules: ActiveRules | None = None  # the compiled Sigma set this worker has loaded
    #: Asked by `_complete`: claim the next job in the transaction that completes this one?
    claim_next: Callable[[], bool] = lambda: False
    #: The job claimed that way (the worker runs it next).
    next_job: queue.ClaimedJob | None = None
    #: Compiled IOC matchers by (case id, IOC-set hash): small files must not recompile.
    ioc_matchers: dict[tuple[int, str], IocMatcher] = field(default_factory=dict)


@dataclass(frozen=True)
class ReusableSegment:
    """A segment already parsed from the same bytes (a `full` job re-uses it)."""

    id: int
    path: Path
    event_count: int


@dataclass(frozen=True)
class FileInfo:
    id: int
    case_id: int
    sha256: str
    stored_path: Path
    file_type: FileType
    segment_id: int | None
    field_map: dict[str, str]
    reuse: ReusableSegment | None = None

    @property
    def variant(self) -> str:
        return segment_variant(self.field_map)


_FILES = EvidenceFile.__table__
_SEGMENTS = Segment.__table__
_FILE_INFO = select(
    _FILES.c.id,
    _FILES.c.case_id,
    _FILES.c.sha256,
    _FILES.c.stored_path,
    _FILES.c.file_type,
    _FILES.c.segment_id,
    _FILES.c.field_map,
).where(_FILES.c.id == bindparam("file_id"))
_SEGMENT_OF = select(_SEGMENTS.c.id, _SEGMENTS.c.path, _SEGMENTS.c.event_count).where(
    _SEGMENTS.c.sha256 == bindparam("sha256"),
    _SEGMENTS.c.parser_version == PARSER_VERSION,
    _SEGMENTS.c.variant == bindparam("variant"),
)


def file_info(session: Session, file_id: int, operation: Operation) -> FileInfo:
    """What processing needs to know of a file (and, for `full`, a segment to re-use)."""
    row = session.execute(_FILE_INFO, {"file_id": file_id}).first()
    if row is None:
        raise PermanentError(f"file {file_id} no longer exists")
    field_map = json.loads(row.field_map) if row.field_map else {}
    info = FileInfo(
        row.id,
        row.case_id,
        row.sha256,
        Path(row.stored_path),
        row.file_type,
        row.segment_id,
        field_map,
    )
    if operation is not Operation.FULL:
        return info
    seg = session.execute(_SEGMENT_OF, {"sha256": info.sha256, "variant": info.variant}).first()
    if seg is None or not Path(seg.path).is_file():
        return info
    return replace(info, reuse=ReusableSegment(seg.id, Path(seg.path), seg.event_count))


def _feed(
    batches: Iterable[pa.RecordBatch],
    analyzers: list[Analyzer],
    progress: Progress,
    writer: SegmentWriter | None = None,
) -> None:
    """The one pass over a file's events: segment, analyzers and progress see each batch."""
    for batch in batches:
        if writer is not None:
            writer.write(batch)
        for analyzer in analyzers:
            analyzer.consume(batch)
        progress.events += batch.num_rows
    for analyzer in analyzers:
        analyzer.finish()


def _parse_to_segment(
    ctx: WorkerContext, info: FileInfo, analyzers: list[Analyzer], result: StepResult
) -> tuple[Path, int, ParseReport]:
    settings = ctx.settings
    report = ParseReport()
    final = segment_path(settings.segments_dir, info.sha256, PARSER_VERSION, info.variant)
    with SegmentWriter(final, settings.tmp_dir) as writer:
        batches = iter_batches(
            info.stored_path,
            info.file_type,
            report,
            batch_size=settings.batch_size,
            field_map=info.field_map or None,
            max_line_bytes=settings.max_line_bytes,
        )
        _feed(batches, analyzers, ctx.progress, writer)
        if report.error and writer.rows == 0:
            raise PermanentError(report.error)
        path = writer.commit()
    result.events = writer.rows
    result.details.append(f"parsed {writer.rows} events")
    return path, writer.rows, report


_INSERT_SEGMENT = insert(_SEGMENTS)
_UPDATE_SEGMENT = (
    update(_SEGMENTS)
    .where(_SEGMENTS.c.id == bindparam("segment_id"))
    .values(path=bindparam("new_path"), event_count=bindparam("rows"), size_bytes=bindparam("size"))
)


def _record_segment(session: Session, info: FileInfo, path: Path, rows: int) -> int:
    """Register a newly written segment (in the completing transaction)."""
    size = path.stat().st_size
    existing = session.execute(_SEGMENT_OF, {"sha256": info.sha256, "variant": info.variant})
    segment_id = existing.scalar()
    if segment_id is None:
        values = {"path": str(path), "event_count": rows, "size_bytes": size}
        key = {"sha256": info.sha256, "parser_version": PARSER_VERSION, "variant": info.variant}
        return session.execute(_INSERT_SEGMENT, {**key, **values}).inserted_primary_key[0]
    params = {"segment_id": segment_id, "new_path": str(path), "rows": rows, "size": size}
    session.execute(_UPDATE_SEGMENT, params)
    return segment_id


def _format_warnings(report: ParseReport | None) -> str:
    if report is None:
        return ""
    lines = list(report.warnings)
    if report.error:
        lines.insert(0, f"error: {report.error}")
    if report.skipped:
        lines.insert(0, f"{report.skipped} records could not be read")
    return "\n".join(lines)[:MAX_WARNING_CHARS]


@dataclass
class Outcome:
    """What the steps produced, written in the completing transaction."""

    segment_id: int | None = None  # a re-used segment
    new_segment: Path | None = None  # a segment written by this job, registered on completion
    event_count: int | None = None
    warnings: str | None = None


def _index_steps(
    ctx: WorkerContext,
    log: StepLog,
    info: FileInfo,
    operation: Operation,
    analyzers: list[Analyzer],
) -> Outcome:
    with log.step(FileStatus.ESTIMATING) as result:
        result.events = estimate_events(info.stored_path, info.file_type)
        if result.events >= LIVE_STATUS_EVENTS:  # worth showing "indexing" while it runs
            with ctx.db.session() as session:
                advance(session, info.id, FileStatus.INDEXING, events_estimated=result.events)
    reuse = info.reuse if operation is Operation.FULL else None
    with log.step(FileStatus.INDEXING) as result:
        if reuse is not None:
            _feed(read_segment(reuse.path, ctx.settings.batch_size), analyzers, ctx.progress)
            result.events = reuse.event_count
            result.details.append(f"re-used segment {reuse.id} (same evidence seen before)")
            return Outcome(segment_id=reuse.id, event_count=reuse.event_count, warnings="")
        path, rows, report = _parse_to_segment(ctx, info, analyzers, result)
    return Outcome(new_segment=path, event_count=rows, warnings=_format_warnings(report))


def _reread_segment(ctx: WorkerContext, info: FileInfo, analyzers: list[Analyzer]) -> None:
    if not any(analyzer.wants_events for analyzer in analyzers):
        return
    with ctx.db.session() as session:
        seg = session.get(Segment, info.segment_id) if info.segment_id else None
    if seg is None or not Path(seg.path).is_file():
        raise PermanentError(f"file {info.id} has no segment to re-read; re-index it first")
    _feed(read_segment(Path(seg.path), ctx.settings.batch_size), analyzers, ctx.progress)


PERSIST_STEPS = {
    Operation.FULL: (FileStatus.SIGMA, FileStatus.IOC),
    Operation.REINDEX: (FileStatus.SIGMA, FileStatus.IOC),
    Operation.SIGMA_ONLY: (FileStatus.SIGMA,),
    Operation.IOC_ONLY: (FileStatus.IOC,),
}


def _persist_steps(
    ctx: WorkerContext, log: StepLog, analyzers: list[Analyzer], operation: Operation
) -> None:
    """Each analyzer writes its findings; the file moves to the next step in that write."""
    steps = PERSIST_STEPS[operation]
    for n, status in enumerate(steps):
        following = steps[n + 1] if n + 1 < len(steps) else None
        with log.step(status) as result:
            mine = [a for a in analyzers if a.status is status]
            if not mine:
                continue
            with ctx.db.session() as session:
                for analyzer in mine:
                    result.events += analyzer.persist(session, log.scope.file_id)
                if following is not None:
                    advance(session, log.scope.file_id, following)


_COMPLETE_FILE = (
    update(_FILES)
    .where(_FILES.c.id == bindparam("file_id"))
    .values(status=FileStatus.COMPLETED, completed_at=bindparam("at"))
)
_COMPLETE_INDEXED_FILE = _COMPLETE_FILE.values(
    segment_id=bindparam("segment"),
    event_count=bindparam("events"),
    events_processed=bindparam("events"),
    hidden=bindparam("empty"),
    index_state=IndexState.PENDING,
    index_generation=_FILES.c.index_generation + 1,
    warnings=bindparam("report"),
)


def _complete(
    ctx: WorkerContext, job: queue.ClaimedJob, info: FileInfo, log: StepLog, outcome: Outcome
) -> bool:
    """Finish job and file in one transaction (and, when asked, claim the next job in it)."""
    next_job = None
    with ctx.db.session() as session:
        log.flush(session)
        if not queue.finish(session, job.id, ctx.worker_id):
            return False
        params: dict[str, object] = {"file_id": info.id, "at": utcnow()}
        if outcome.new_segment is not None:
            outcome.segment_id = _record_segment(
                session, info, outcome.new_segment, outcome.event_count or 0
            )
        if outcome.event_count is None:
            session.execute(_COMPLETE_FILE, params)
        else:
            params.update(
                segment=outcome.segment_id,
                events=outcome.event_count,
                empty=outcome.event_count == 0,
                report=outcome.warnings or "",
            )
            session.execute(_COMPLETE_INDEXED_FILE, params)
        if ctx.claim_next():
            next_job = queue.claim_in(session, ctx.worker_id, ctx.settings.lease_seconds)
    ctx.next_job = next_job  # only once committed
    return True


def process_file(
    ctx: WorkerContext,
    job: queue.ClaimedJob,
    analyzers: list[Analyzer] | None = None,
    info: FileInfo | None = None,
) -> bool:
    """Run every step of `job.operation` for its file; True if this worker completed it.

    With `ctx.claim_next`, the completing transaction also claims the worker's next job
    (`ctx.next_job`): one worker still owns each file from claim to completion.
    """
    ctx.next_job = None
    if info is None:
        with ctx.db.read() as session:
            info = file_info(session, job.file_id, job.operation)
    if not info.stored_path.is_file():
        raise PermanentError(f"evidence file is missing: {info.stored_path}")
    log = StepLog(StepScope(info.case_id, info.id, job.id, f"worker:{ctx.worker_id}"))
    analyzers = analyzers or []
    ctx.progress.events = 0
    try:
        outcome = Outcome()
        if job.operation in (Operation.FULL, Operation.REINDEX):
            outcome = _index_steps(ctx, log, info, job.operation, analyzers)
        else:
            _reread_segment(ctx, info, analyzers)
        _persist_steps(ctx, log, analyzers, job.operation)
        return _complete(ctx, job, info, log, outcome)
    except BaseException:
        log.flush_alone(ctx.db)
        raise

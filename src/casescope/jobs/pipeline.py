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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pyarrow as pa
from sqlalchemy import Select, insert, select, update
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
    #: Compiled IOC matchers by (case id, IOC-set hash): small files must not recompile.
    ioc_matchers: dict[tuple[int, str], IocMatcher] = field(default_factory=dict)


@dataclass(frozen=True)
class FileInfo:
    id: int
    case_id: int
    sha256: str
    stored_path: Path
    file_type: FileType
    segment_id: int | None
    field_map: dict[str, str]

    @property
    def variant(self) -> str:
        return segment_variant(self.field_map)


def _file_info(db: Database, file_id: int) -> FileInfo:
    with db.read() as session:
        f = session.get(EvidenceFile, file_id)
        if f is None:
            raise PermanentError(f"file {file_id} no longer exists")
        field_map = json.loads(f.field_map) if f.field_map else {}
        return FileInfo(
            f.id, f.case_id, f.sha256, Path(f.stored_path), f.file_type, f.segment_id, field_map
        )


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


def _segment_query(info: FileInfo) -> Select[tuple[Segment]]:
    return select(Segment).where(
        Segment.sha256 == info.sha256,
        Segment.parser_version == PARSER_VERSION,
        Segment.variant == info.variant,
    )


def _reusable_segment(session: Session, info: FileInfo) -> Segment | None:
    seg = session.scalar(_segment_query(info))
    return seg if seg is not None and Path(seg.path).is_file() else None


def _record_segment(session: Session, info: FileInfo, path: Path, rows: int) -> int:
    """Register a newly written segment (in the completing transaction)."""
    values = {"path": str(path), "event_count": rows, "size_bytes": path.stat().st_size}
    segment_id = session.scalar(_segment_query(info).with_only_columns(Segment.id))
    if segment_id is None:
        key = {"sha256": info.sha256, "parser_version": PARSER_VERSION, "variant": info.variant}
        return session.execute(insert(Segment).values(**key, **values)).inserted_primary_key[0]
    session.execute(update(Segment).where(Segment.id == segment_id).values(**values))
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
        with ctx.db.read() as session:
            reuse = _reusable_segment(session, info) if operation is Operation.FULL else None
    with log.step(FileStatus.INDEXING) as result:
        if reuse is not None:
            _feed(read_segment(Path(reuse.path), ctx.settings.batch_size), analyzers, ctx.progress)
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


def _complete(
    ctx: WorkerContext, job: queue.ClaimedJob, info: FileInfo, log: StepLog, outcome: Outcome
) -> bool:
    with ctx.db.session() as session:
        log.flush(session)
        if not queue.finish(session, job.id, ctx.worker_id):
            return False
        values: dict[str, object] = {"status": FileStatus.COMPLETED, "completed_at": utcnow()}
        if outcome.new_segment is not None:
            outcome.segment_id = _record_segment(
                session, info, outcome.new_segment, outcome.event_count or 0
            )
        if outcome.event_count is not None:
            values.update(
                segment_id=outcome.segment_id,
                event_count=outcome.event_count,
                events_processed=outcome.event_count,
                hidden=outcome.event_count == 0,
                index_state=IndexState.PENDING,
                index_generation=EvidenceFile.index_generation + 1,
                warnings=outcome.warnings or "",
            )
        session.execute(update(EvidenceFile).where(EvidenceFile.id == info.id).values(**values))
    return True


def process_file(
    ctx: WorkerContext, job: queue.ClaimedJob, analyzers: list[Analyzer] | None = None
) -> bool:
    """Run every step of `job.operation` for its file; True if this worker completed it."""
    info = _file_info(ctx.db, job.file_id)
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

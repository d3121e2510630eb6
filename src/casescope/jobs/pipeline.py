"""`process_file(ctx, job)`: one worker takes one file through every step.

Why one worker: docs/decisions.md, "One worker owns one file".

    full / reindex:  estimating → indexing → sigma → ioc → completed
    sigma_only:      sigma → completed      (re-reads the segment; no re-parse)
    ioc_only:        ioc → completed        (likewise)

Sigma and IOC analyzers see every batch during indexing (one pass over the data); their
steps then persist what they found. A step that raises fails the attempt; the queue decides
whether to retry.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from casescope.errors import PermanentError, disk_full_message
from casescope.jobs.context import (
    Analyzer,
    Consumer,
    FileInfo,
    Progress,
    WorkerContext,
    check_evidence,
    file_info,
)
from casescope.jobs.slices import SlicedFile, index_in_slices, plan_for, record_sliced_steps
from casescope.jobs.steps import StepLog, StepResult, StepScope, advance
from casescope.model.enums import FileStatus, IndexState, JobState, Operation
from casescope.model.outage import is_transient
from casescope.model.tables import EvidenceFile, Segment, utcnow
from casescope.parse.evtx_slices import Slice
from casescope.parse.files import estimate_events, iter_batches
from casescope.parse.report import ParseReport
from casescope.parse.schema import PARSER_VERSION
from casescope.store.load_queue import publish_piece
from casescope.store.segments import (
    PieceWriter,
    SegmentWriter,
    pieces_dir,
    read_segment,
    segment_bytes,
    segment_path,
    sync_to_disk,
)
from casescope.workqueue import queue, slices

logger = logging.getLogger(__name__)

MAX_WARNING_CHARS = 20_000
#: Files estimated above this many events commit their "indexing" status before parsing;
#: smaller ones skip that write (at 10,000+ small files every transaction counts).
LIVE_STATUS_EVENTS = 20_000

_FILES = EvidenceFile.__table__
_SEGMENTS = Segment.__table__


def _feed(
    batches: Iterable[pa.RecordBatch],
    analyzers: Sequence[Consumer],
    progress: Progress,
    writer: SegmentWriter | PieceWriter | None = None,
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


def _segment_writer(
    ctx: WorkerContext, job: queue.ClaimedJob, info: FileInfo, estimate: int
) -> SegmentWriter | PieceWriter:
    """One Parquet file, or pieces the index owner loads during the parse for a file
    estimated at two pieces or more (store/pieces.py)."""
    settings = ctx.settings
    final = segment_path(settings.segments_dir, info.sha256, PARSER_VERSION, info.variant)
    piece_rows = settings.load_piece_events
    if estimate < 2 * piece_rows:
        return SegmentWriter(final, settings.tmp_dir)

    def publish(piece: int, seq_from: int, seq_to: int, path: Path) -> None:
        seq = range(seq_from, seq_to)
        publish_piece(ctx.db, job.id, job.attempts, info.id, piece, seq, path)

    return PieceWriter(pieces_dir(final, job.id, job.attempts), piece_rows, publish)


def _parse_to_segment(
    ctx: WorkerContext,
    job: queue.ClaimedJob,
    info: FileInfo,
    analyzers: Sequence[Consumer],
    result: StepResult,
    estimate: int,
) -> tuple[Path, int, ParseReport]:
    settings = ctx.settings
    report = ParseReport()
    with _segment_writer(ctx, job, info, estimate) as writer:
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
        path = writer.commit(sync=False)  # synced with the rest before completion
    result.events = writer.rows
    result.details.append(f"parsed {writer.rows} events")
    return path, writer.rows, report


_INSERT_SEGMENT = insert(_SEGMENTS)
_UPDATE_SEGMENT = (
    update(_SEGMENTS)
    .where(_SEGMENTS.c.id == bindparam("segment_id"))
    .values(path=bindparam("new_path"), event_count=bindparam("rows"), size_bytes=bindparam("size"))
)
_SEGMENT_IDS = select(_SEGMENTS.c.id, _SEGMENTS.c.sha256, _SEGMENTS.c.variant).where(
    _SEGMENTS.c.sha256.in_(bindparam("sha256s", expanding=True)),
    _SEGMENTS.c.parser_version == PARSER_VERSION,
)


def _segment_ids(session: Session, sha256s: Iterable[str]) -> dict[tuple[str, str], int]:
    rows = session.execute(_SEGMENT_IDS, {"sha256s": sorted(set(sha256s))})
    return {(row.sha256, row.variant): row.id for row in rows}


def _record_segments(session: Session, written: Sequence[tuple[FileInfo, Outcome]]) -> None:
    """Register newly written segments (in the completing transaction), each outcome's
    `segment_id` set: one query for those already known, one INSERT and one UPDATE for
    all (a group of small files must not pay a SELECT and an INSERT per file)."""
    known = _segment_ids(session, (info.sha256 for info, _ in written))
    inserts: dict[tuple[str, str], dict[str, object]] = {}
    updates = []
    for info, outcome in written:
        assert outcome.new_segment is not None
        path, rows = outcome.new_segment, outcome.event_count or 0
        values = {"path": str(path), "event_count": rows, "size_bytes": segment_bytes(path)}
        key = (info.sha256, info.variant)
        if key in known:
            params = {"new_path": str(path), "rows": rows, "size": values["size_bytes"]}
            updates.append({"segment_id": known[key], **params})
        else:  # the same bytes twice in one group: one row (the path is the same)
            fields = {"sha256": info.sha256, "parser_version": PARSER_VERSION}
            inserts[key] = {**fields, "variant": info.variant, **values}
    if updates:
        session.execute(_UPDATE_SEGMENT, updates)
    if inserts:
        session.execute(_INSERT_SEGMENT, list(inserts.values()))
        known |= _segment_ids(session, (sha256 for sha256, _ in inserts))
    for info, outcome in written:
        outcome.segment_id = known[(info.sha256, info.variant)]


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
    bundle: Path | None = None  # a group's load bundle holding the file's events
    sliced: SlicedFile | None = None  # parsed in slices, which wrote its findings


def _slices_to_plan(
    ctx: WorkerContext, job: queue.ClaimedJob, info: FileInfo
) -> list[Slice] | None:
    """The slices to parse the file in (jobs/slices.py), unless an earlier attempt found
    that its chunk headers do not give its `seq`."""
    with ctx.db.read() as session:
        if slices.found_invalid(session, job.id):
            return None
    return plan_for(ctx.settings, info)


def _index_in_slices(
    ctx: WorkerContext,
    job: queue.ClaimedJob,
    info: FileInfo,
    planned: list[Slice],
    analyzers: Sequence[Analyzer],
    result: StepResult,
) -> Outcome:
    sliced = index_in_slices(ctx, job, info, planned, analyzers)
    result.events = sliced.events
    workers = ", ".join(sliced.workers)
    result.details.append(f"parsed {sliced.events} events in {len(planned)} slices ({workers})")
    warnings = sliced.warnings[:MAX_WARNING_CHARS]
    return Outcome(
        new_segment=sliced.segment, event_count=sliced.events, warnings=warnings, sliced=sliced
    )


def _index_steps(
    ctx: WorkerContext,
    log: StepLog,
    job: queue.ClaimedJob,
    info: FileInfo,
    analyzers: Sequence[Consumer],
    sliceable: Sequence[Analyzer] | None = None,
) -> Outcome:
    with log.step(FileStatus.ESTIMATING) as result:
        estimate = result.events = estimate_events(info.stored_path, info.file_type)
        if estimate >= LIVE_STATUS_EVENTS:  # worth showing "indexing" while it runs
            with ctx.db.session() as session:
                advance(session, info.id, FileStatus.INDEXING, events_estimated=estimate)
    reuse = info.reuse if job.operation is Operation.FULL else None
    with log.step(FileStatus.INDEXING) as result:
        if reuse is not None:
            _feed(read_segment(reuse.path, ctx.settings.batch_size), analyzers, ctx.progress)
            result.events = reuse.event_count
            result.details.append(f"re-used segment {reuse.id} (same evidence seen before)")
            return Outcome(segment_id=reuse.id, event_count=reuse.event_count, warnings="")
        if sliceable is not None and (planned := _slices_to_plan(ctx, job, info)):
            return _index_in_slices(ctx, job, info, planned, sliceable, result)
        path, rows, report = _parse_to_segment(ctx, job, info, analyzers, result, estimate)
    return Outcome(new_segment=path, event_count=rows, warnings=_format_warnings(report))


def _reread_segment(ctx: WorkerContext, info: FileInfo, analyzers: Sequence[Consumer]) -> None:
    if not any(analyzer.wants_events for analyzer in analyzers):
        return
    with ctx.db.session() as session:
        seg = session.get(Segment, info.segment_id) if info.segment_id else None
    if seg is None or not Path(seg.path).exists():
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
    load_bundle=bindparam("bundle"),
)


def sync_written(outcomes: Sequence[Outcome]) -> None:
    """The new segments made durable, in one flush, before the transaction naming them."""
    sync_to_disk([o.new_segment for o in outcomes if o.new_segment is not None])


def complete_file(session: Session, info: FileInfo, outcome: Outcome) -> None:
    """Mark the file completed with what its steps produced (in the caller's transaction)."""
    complete_files(session, [(info, outcome)])


def complete_files(session: Session, done: Sequence[tuple[FileInfo, Outcome]]) -> None:
    """`complete_file` for several files, in a few statements (executemany)."""
    written = [(info, outcome) for info, outcome in done if outcome.new_segment is not None]
    if written:
        _record_segments(session, written)
    at = utcnow()
    plain = [{"file_id": info.id, "at": at} for info, o in done if o.event_count is None]
    indexed = [
        {
            "file_id": info.id,
            "at": at,
            "segment": outcome.segment_id,
            "events": outcome.event_count,
            "empty": outcome.event_count == 0,
            "report": outcome.warnings or "",
            "bundle": str(outcome.bundle) if outcome.bundle else None,
        }
        for info, outcome in done
        if outcome.event_count is not None
    ]
    if plain:
        session.execute(_COMPLETE_FILE, plain)
    if indexed:
        session.execute(_COMPLETE_INDEXED_FILE, indexed)


def claim_next_in(ctx: WorkerContext, session: Session) -> list[queue.ClaimedJob]:
    """The worker's next jobs, claimed in its completing transaction when it wants more."""
    wanted = ctx.claim_next()
    if wanted <= 0:
        return []
    settings = ctx.settings
    return queue.claim_group_in(
        session, ctx.worker_id, settings.lease_seconds, wanted, settings.group_max_bytes
    )


def _complete(
    ctx: WorkerContext, job: queue.ClaimedJob, info: FileInfo, log: StepLog, outcome: Outcome
) -> bool:
    """Finish job and file in one transaction (and, when asked, claim the next jobs in it)."""
    next_jobs: list[queue.ClaimedJob] = []
    sync_written([outcome])
    with ctx.db.session() as session:
        log.flush(session)
        if not queue.finish(session, job.id, ctx.worker_id):
            return False
        complete_file(session, info, outcome)
        next_jobs = claim_next_in(ctx, session)
    ctx.next_jobs = next_jobs  # only once committed
    return True


@contextmanager
def failure_recorded(ctx: WorkerContext, job: queue.ClaimedJob) -> Iterator[None]:
    """Run the block; if it raises, record a failed attempt of `job` instead.

    A permanent error or a full disk fails the file at once (retrying cannot help);
    anything else is retried while attempts remain, except a lost metadata database, which
    is raised to the worker loop: no attempt can be recorded without it.
    """
    try:
        yield
    except PermanentError as exc:
        logger.warning("job %d file %d failed: %s", job.id, job.file_id, exc)
        queue.fail(ctx.db, job.id, ctx.worker_id, str(exc), permanent=True)
    except Exception as exc:  # isolation boundary: one file's failure never stops the worker
        if is_transient(exc):  # not the file's fault: the worker loop rides it out (worker.py)
            raise
        if disk_full := disk_full_message(exc):
            logger.error("job %d file %d failed: %s", job.id, job.file_id, disk_full)
            queue.fail(ctx.db, job.id, ctx.worker_id, disk_full, permanent=True)
            return
        logger.exception("job %d file %d: attempt %d failed", job.id, job.file_id, job.attempts)
        detail = f"{type(exc).__name__}: {exc}"
        state = queue.fail(ctx.db, job.id, ctx.worker_id, detail, permanent=False)
        if state is JobState.FAILED:
            logger.debug("job %d traceback:\n%s", job.id, traceback.format_exc())


def read_events(
    ctx: WorkerContext,
    job: queue.ClaimedJob,
    info: FileInfo,
    log: StepLog,
    analyzers: Sequence[Consumer],
    sliceable: Sequence[Analyzer] | None = None,
) -> Outcome:
    """The reading part of a job: parse (full/reindex) or re-read the segment, feeding
    `analyzers`; what the indexing steps produced. With `sliceable` (the analyzers, when
    the file is read alone), a large EVTX file is parsed in slices (jobs/slices.py)."""
    if job.operation in (Operation.FULL, Operation.REINDEX):
        return _index_steps(ctx, log, job, info, analyzers, sliceable)
    _reread_segment(ctx, info, analyzers)
    return Outcome()


def process_file(
    ctx: WorkerContext,
    job: queue.ClaimedJob,
    analyzers: list[Analyzer] | None = None,
    info: FileInfo | None = None,
) -> bool:
    """Run every step of `job.operation` for its file; True if this worker completed it.

    With `ctx.claim_next`, the completing transaction also claims the worker's next jobs
    (`ctx.next_jobs`): one worker still owns each file from claim to completion.
    """
    ctx.next_jobs = []
    if info is None:
        with ctx.db.read() as session:
            info = file_info(session, job.file_id, job.operation)
    check_evidence(info, job.operation)
    log = StepLog(StepScope(info.case_id, info.id, job.id, f"worker:{ctx.worker_id}"))
    analyzers = analyzers or []
    ctx.progress.events = 0
    try:
        outcome = read_events(ctx, job, info, log, analyzers, sliceable=analyzers)
        if outcome.sliced is not None:
            steps = PERSIST_STEPS[job.operation]
            record_sliced_steps(ctx, log, outcome.sliced, steps, analyzers)
        else:
            _persist_steps(ctx, log, analyzers, job.operation)
        return _complete(ctx, job, info, log, outcome)
    except BaseException:
        log.flush_alone(ctx.db)
        raise

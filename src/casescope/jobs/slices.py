"""A large EVTX file parsed in slices: its job's owner plans chunk ranges, and it and any
idle worker parse, match and write them (docs/decisions.md, "Large files load in pieces",
Slices).

Each slice is parsed alone with the whole file's `seq` (parse/evtx_slices.py), its events
go to load pieces under the owner's attempt (store/pieces.py), numbered after the pieces of
the slices before it, so the directory of pieces is the file's segment in `seq` order; its
detections and IOC hits replace those of its `seq` range in the transaction that marks it
done. The owner completes the file, with the whole file's event count, once every slice is
done. A slice whose worker died is claimed again after its lease and writes over what the
dead run left: the same pieces (the load clears each piece's `seq` range), the same range
of detections and hits. An attempt that dies is re-planned by the next, which starts by
deleting the file's detections and hits; its first piece clears the file's rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, update

from casescope.config import Settings
from casescope.errors import CasescopeError
from casescope.jobs.context import Analyzer, FileInfo, WorkerContext
from casescope.jobs.steps import StepLog
from casescope.model.enums import FileStatus, FileType
from casescope.model.tables import Detection, EvidenceFile, IocHit
from casescope.parse.evtx_layout import CHUNK_SIZE
from casescope.parse.evtx_slices import Slice, chunk_counts, plan_slices
from casescope.parse.files import iter_batches
from casescope.parse.report import ParseReport
from casescope.parse.schema import PARSER_VERSION
from casescope.store.load_queue import add_piece
from casescope.store.segments import PieceWriter, pieces_dir, segment_path
from casescope.workqueue import queue, slices
from casescope.workqueue.slices import ClaimedSlice

logger = logging.getLogger(__name__)

MIB = 2**20
#: How often the owner looks at its slices while other workers parse the last ones.
WAIT_SECONDS = 0.25


class SliceLost(CasescopeError):
    """The slice is no longer this worker's run (its lease ran out, or its attempt ended)."""


class SlicingInvalid(CasescopeError):
    """A slice read another count of events than its chunk headers name: the file's `seq`
    cannot come from them; the job's next attempt parses the file whole."""


class SliceFailed(CasescopeError):
    """A slice failed in another worker: the attempt fails (and is retried as usual)."""


def plan_for(settings: Settings, info: FileInfo) -> list[Slice] | None:
    """The slices of a file worth slicing: an EVTX file of at least two `slice_min_mb`,
    one slice per `slice_min_mb` up to one per worker, whose chunk headers are intact
    (`chunk_counts`). None: parse it whole."""
    if info.file_type is not FileType.EVTX:
        return None
    least = settings.slice_min_mb * MIB
    wanted = min(settings.workers, int(info.stored_path.stat().st_size // least))
    if wanted < 2:
        return None
    counts = chunk_counts(info.stored_path)
    if counts is None:
        return None
    planned = plan_slices(counts, wanted, min_chunks=max(1, int(least // CHUNK_SIZE)))
    return planned if len(planned) > 1 else None


def run_slice(
    ctx: WorkerContext, claimed: ClaimedSlice, info: FileInfo, analyzers: Sequence[Analyzer]
) -> bool:
    """Parse one slice into its pieces, feeding `analyzers`, and write its detections and
    hits; False if the slice stopped being this worker's meanwhile (nothing written)."""
    ctx.slice = claimed
    try:
        rows, report = _parse_slice(ctx, claimed, info, analyzers)
        if rows != claimed.part.events or report.error:
            raise SlicingInvalid(
                f"slice {claimed.number} of file {info.id} read {rows} events where its chunk "
                f"headers name {claimed.part.events}"
            )
        with ctx.db.session() as session:
            if not slices.held(session, claimed, ctx.worker_id):
                return False
            found = {
                a.status: a.persist_range(session, info.id, info.case_id, claimed.seqs)
                for a in analyzers
            }
            counts = (found.get(FileStatus.SIGMA, 0), found.get(FileStatus.IOC, 0))
            warnings = "\n".join(report.warnings)
            return slices.finish(session, claimed, ctx.worker_id, counts, warnings)
    except SliceLost:
        logger.warning("worker %s lost slice %d of file %d", ctx.worker_id, claimed.number, info.id)
        return False
    finally:
        ctx.slice = None


def _parse_slice(
    ctx: WorkerContext, claimed: ClaimedSlice, info: FileInfo, analyzers: Sequence[Analyzer]
) -> tuple[int, ParseReport]:
    settings = ctx.settings
    final = segment_path(settings.segments_dir, info.sha256, PARSER_VERSION, info.variant)

    def publish(piece: int, seq_from: int, seq_to: int, path: Path) -> None:
        with ctx.db.session() as session:
            if not slices.held(session, claimed, ctx.worker_id):
                raise SliceLost(f"slice {claimed.id}")
            seqs = range(seq_from, seq_to)
            add_piece(session, claimed.job_id, claimed.attempt, info.id, piece, seqs, path)

    report = ParseReport()
    directory = pieces_dir(final, claimed.job_id, claimed.attempt)
    part = claimed.part
    piece_rows = settings.load_piece_events
    with PieceWriter(directory, piece_rows, publish, claimed.first_piece, part.seq_from) as writer:
        batches = iter_batches(
            info.stored_path, FileType.EVTX, report, batch_size=settings.batch_size, part=part
        )
        for batch in batches:
            writer.write(batch)
            for analyzer in analyzers:
                analyzer.consume(batch)
            ctx.progress.events += batch.num_rows
        for analyzer in analyzers:
            analyzer.finish()
        writer.commit(sync=False)  # synced with the rest before the file completes
    return writer.rows, report


@dataclass(frozen=True)
class SlicedFile:
    """What the slices of an attempt produced, for the owner's completion."""

    segment: Path
    events: int
    detections: int
    ioc_hits: int
    warnings: str
    workers: list[str]


def index_in_slices(
    ctx: WorkerContext,
    job: queue.ClaimedJob,
    info: FileInfo,
    planned: list[Slice],
    analyzers: Sequence[Analyzer],
) -> SlicedFile:
    """The owner's part: record the slices (the file's detections and hits of earlier
    attempts go in the same transaction), work them while any is waiting, then wait for
    those other workers hold."""
    settings = ctx.settings
    with ctx.db.session() as session:
        slices.plan(session, job.id, job.attempts, info.id, planned, settings.load_piece_events)
        session.execute(delete(Detection).where(Detection.file_id == info.id))
        session.execute(delete(IocHit).where(IocHit.file_id == info.id))
    while True:
        claimed = slices.claim(ctx.db, ctx.worker_id, settings.lease_seconds, job_id=job.id)
        if claimed is not None:
            work_slice(ctx, claimed, info, [a.fresh() for a in analyzers])
            continue
        state = slices.attempt_slices(ctx.db, job.id, job.attempts)
        if state.errors:
            raise SliceFailed("; ".join(state.errors))
        if state.done:
            break
        time.sleep(WAIT_SECONDS)
    final = segment_path(settings.segments_dir, info.sha256, PARSER_VERSION, info.variant)
    return SlicedFile(
        pieces_dir(final, job.id, job.attempts),
        state.events,
        state.detections,
        state.ioc_hits,
        "\n".join(state.warnings),
        state.workers,
    )


def work_slice(
    ctx: WorkerContext, claimed: ClaimedSlice, info: FileInfo, analyzers: Sequence[Analyzer]
) -> None:
    """`run_slice`, its failure recorded on the slice (the owner then fails the attempt)."""
    try:
        run_slice(ctx, claimed, info, analyzers)
    except SlicingInvalid as exc:
        slices.fail(ctx.db, claimed, ctx.worker_id, str(exc), invalid=True)
        raise
    except Exception as exc:  # isolation boundary: one slice; its owner decides
        slices.fail(ctx.db, claimed, ctx.worker_id, f"{type(exc).__name__}: {exc}")
        raise


def record_sliced_steps(
    ctx: WorkerContext,
    log: StepLog,
    sliced: SlicedFile,
    steps: Sequence[FileStatus],
    analyzers: Sequence[Analyzer],
) -> None:
    """The Sigma and IOC `steps` of a sliced file: its slices wrote the results; what they
    found goes into the steps' audit rows, and the rule set into the file's row."""
    found = {FileStatus.SIGMA: sliced.detections, FileStatus.IOC: sliced.ioc_hits}
    by_status = {analyzer.status: analyzer for analyzer in analyzers}
    for status in steps:
        with log.step(status) as result:
            if status not in by_status:
                continue
            result.events = found[status]
            result.details.append(f"written by the slices of {', '.join(sliced.workers)}")
            active = getattr(by_status[status], "active", None)
            if active is None:
                continue
            with ctx.db.session() as session:
                session.execute(
                    update(EvidenceFile)
                    .where(EvidenceFile.id == log.scope.file_id)
                    .values(sigma_ruleset=active.hash)
                )

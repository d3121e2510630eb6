"""Small files in groups: one claim, one Sigma and IOC evaluation, one completing transaction.

At 10,000+ small files (the bulk case: ~30 events an EVTX) the fixed costs of a file
dominate its work: a transaction per step, a Sigma evaluation (a fixed cost per batch
however few its events: `bench/sigma.py`), the IOC automata. So a worker claims the small
files queued together (`queue.claim_group_in`), reads each into its own segment exactly as
`process_file` does, evaluates each analyzer once over all their events, and completes every
file in one transaction. Each file keeps its own job, lease, attempt count, segment, audit
rows and outcome; a file that fails fails alone, and one worker owns each file from claim to
completion (docs/decisions.md, "One worker owns one file"). Large files are claimed alone
and streamed by `process_file`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from casescope.jobs.context import Analyzer, FileInfo, GroupPart, WorkerContext, check_evidence
from casescope.jobs.pipeline import (
    PERSIST_STEPS,
    Outcome,
    claim_next_in,
    complete_files,
    failure_recorded,
    read_events,
    sync_written,
)
from casescope.jobs.steps import StepLog, StepScope, flush_logs
from casescope.model.enums import FileStatus, Operation
from casescope.model.outage import is_transient
from casescope.parse.schema import EVENT_SCHEMA
from casescope.workqueue import queue

logger = logging.getLogger(__name__)


class EventSink:
    """Keeps a small file's batches while it is read (the group evaluates them later)."""

    status = FileStatus.INDEXING
    wants_events = True

    def __init__(self) -> None:
        self.batches: list[pa.RecordBatch] = []

    def consume(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self.batches.append(_event_schema(batch))

    def finish(self) -> None:
        """Nothing to do: the batches are taken by `Member.read`."""


@dataclass
class Member:
    """One file of a group: its job, analyzers, steps and what they produced."""

    job: queue.ClaimedJob
    info: FileInfo
    analyzers: list[Analyzer]
    log: StepLog
    outcome: Outcome = field(default_factory=Outcome)
    #: All its events, as one batch (None when nothing wants them, or the file is empty).
    events: pa.RecordBatch | None = None
    #: This file's share of the group's evaluation time, per step (for its audit rows).
    shared_ms: dict[FileStatus, float] = field(default_factory=dict)

    @classmethod
    def of(
        cls, ctx: WorkerContext, job: queue.ClaimedJob, info: FileInfo, analyzers: list[Analyzer]
    ) -> Member:
        scope = StepScope(info.case_id, info.id, job.id, f"worker:{ctx.worker_id}")
        return cls(job, info, analyzers, StepLog(scope))

    @property
    def indexes(self) -> bool:
        """Whether the job (re)writes the file's events in the index."""
        return self.job.operation in (Operation.FULL, Operation.REINDEX)

    def read(self, ctx: WorkerContext) -> None:
        """Parse the file into its segment (or re-read its segment), keeping its events."""
        check_evidence(self.info, self.job.operation)
        sink = EventSink()
        # parsed events go to the group's load bundle too; re-reads only if an analyzer wants them
        wanted = self.indexes or any(a.wants_events for a in self.analyzers)
        self.outcome = read_events(ctx, self.job, self.info, self.log, [sink] if wanted else [])
        if sink.batches:
            self.events = pa.concat_batches(sink.batches)


def _event_schema(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Parser batches and segment batches alike, so a group's batches concatenate."""
    return batch if batch.schema.equals(EVENT_SCHEMA) else batch.cast(EVENT_SCHEMA)


def _renumbered(batches: list[pa.RecordBatch]) -> tuple[pa.RecordBatch, list[int]]:
    """The events of several files as one batch whose `seq` is the row number, and the row
    where each file starts (then the total)."""
    starts = np.concatenate([[0], np.cumsum([b.num_rows for b in batches])]).tolist()
    combined = pa.concat_batches(batches)
    columns = list(combined.columns)
    columns[EVENT_SCHEMA.get_field_index("seq")] = pa.array(
        np.arange(combined.num_rows, dtype=np.uint64)
    )
    return pa.RecordBatch.from_arrays(columns, schema=EVENT_SCHEMA), starts


def _by_seq(hits: pa.Table) -> pa.Table:
    hits = hits.combine_chunks()
    seqs = hits.column("seq").to_numpy().astype(np.int64)
    return hits.sort_by("seq") if (np.diff(seqs) < 0).any() else hits


def evaluate_together(members: list[Member]) -> None:
    """Each analyzer's hits over all the group's events at once, handed back per file."""
    by_shared: dict[int, list[tuple[Member, Analyzer]]] = {}
    for member in members:
        for analyzer in member.analyzers if member.events is not None else ():
            if analyzer.wants_events:
                by_shared.setdefault(id(analyzer.shared), []).append((member, analyzer))
    combined_of: dict[tuple[int, ...], tuple[pa.RecordBatch, list[int]]] = {}
    for pairs in by_shared.values():
        started = time.perf_counter()
        key = tuple(m.info.id for m, _ in pairs)  # Sigma and IOCs mostly see the same files
        if key not in combined_of:
            combined_of[key] = _renumbered([m.events for m, _ in pairs if m.events is not None])
        combined, starts = combined_of[key]
        first = pairs[0][1]
        parts = [
            GroupPart(analyzer, member.events, starts[n], starts[n + 1])
            for n, (member, analyzer) in enumerate(pairs)
            if member.events is not None
        ]
        first.add_group_hits(combined, _by_seq(first.find(combined)), parts)
        elapsed = (time.perf_counter() - started) * 1000
        for member, analyzer in pairs:
            assert member.events is not None
            share = elapsed * member.events.num_rows / max(combined.num_rows, 1)
            member.shared_ms[analyzer.status] = member.shared_ms.get(analyzer.status, 0.0) + share


#: Columns a load bundle adds to the event schema: whose events each row is.
BUNDLE_KEYS = pa.schema([pa.field("case_id", pa.uint32()), pa.field("file_id", pa.uint64())])


def _keyed(parts: list[Member]) -> pa.Table:
    """The members' events in one table, each row with its case and file id (the ids
    repeated by numpy over the whole group: per file, Arrow's calls cost more than its rows)."""
    events = [m.events for m in parts if m.events is not None]
    counts = [batch.num_rows for batch in events]
    table = pa.Table.from_batches(events, EVENT_SCHEMA)
    cases = np.repeat(np.array([m.info.case_id for m in parts], np.uint32), counts)
    files = np.repeat(np.array([m.info.id for m in parts], np.uint64), counts)
    table = table.append_column(BUNDLE_KEYS.field(0), pa.array(cases))
    return table.append_column(BUNDLE_KEYS.field(1), pa.array(files))


def write_bundle(ctx: WorkerContext, members: list[Member]) -> Path | None:
    """The parsed events of the group's files in one Parquet file, each row with its case and
    file id, for the index owner to load in one read instead of one per small segment (the
    owner's cost of a small file is mostly opening its segment). Each file's own segment
    stays the source of truth: the bundle is not synced, and a missing or unreadable one
    makes the owner load the segments. None if there is nothing to bundle or it cannot be
    written."""
    parts = [m for m in members if m.indexes and m.events is not None and m.events.num_rows]
    if len(parts) < 2:
        return None
    final = ctx.settings.bundles_dir / f"{ctx.worker_id}-{parts[0].job.id}.parquet"
    tmp = ctx.settings.tmp_dir / f"{final.name}.tmp"
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(_keyed(parts), tmp, compression="lz4")
        tmp.replace(final)
    except OSError as exc:  # the segments suffice: load them instead
        logger.warning("group load bundle not written (%s); segments will be loaded", exc)
        tmp.unlink(missing_ok=True)
        return None
    for member in parts:
        member.outcome.bundle = final
    return final


def _persist_all(session: Session, members: list[Member], status: FileStatus) -> None:
    """Every member's findings of one step in a few statements, with its audit row."""
    started = time.perf_counter()
    written: dict[int, int] = {}
    by_kind: dict[type, list[tuple[Member, Analyzer]]] = {}
    for member in members:
        for analyzer in member.analyzers:
            if analyzer.status is status:
                by_kind.setdefault(type(analyzer), []).append((member, analyzer))
    for kind, pairs in by_kind.items():
        items = [(a, m.info.id, m.info.case_id) for m, a in pairs]
        for (member, _), count in zip(pairs, kind.persist_many(session, items), strict=True):
            written[member.job.id] = written.get(member.job.id, 0) + count
    each_ms = (time.perf_counter() - started) * 1000 / max(len(members), 1)
    for member in members:
        shared = member.shared_ms.get(status)
        with member.log.step(status, each_ms + (shared or 0.0)) as result:
            result.events = written.get(member.job.id, 0)
            if shared is not None:
                result.details.append(f"evaluated together with {len(members) - 1} other files")


def _complete_all(ctx: WorkerContext, session: Session, members: list[Member]) -> list[Member]:
    """Persist the members' findings, audit rows and completions in the caller's
    transaction; the members completed (a member whose lease was lost is left alone:
    another worker owns its file now)."""
    owned = queue.finish_many(session, [m.job.id for m in members], ctx.worker_id)
    done = [m for m in members if m.job.id in owned]
    steps = dict.fromkeys(s for m in done for s in PERSIST_STEPS[m.job.operation])
    for status in steps:
        _persist_all(session, [m for m in done if status in PERSIST_STEPS[m.job.operation]], status)
    flush_logs(session, [m.log for m in done])
    complete_files(session, [(m.info, m.outcome) for m in done])
    return done


def complete_together(ctx: WorkerContext, members: list[Member]) -> list[Member]:
    """Complete the group in one transaction (claiming the next jobs in it when asked);
    the members this worker completed. If that transaction fails, each file is completed
    in its own, so one file's bad write cannot fail the others."""
    ctx.next_jobs = []
    sync_written([m.outcome for m in members])
    marks = [m.log.checkpoint() for m in members]
    try:
        with ctx.db.session() as session:
            done = _complete_all(ctx, session, members)
            next_jobs = claim_next_in(ctx, session)
    except Exception as exc:  # isolation boundary: fall back to one transaction per file
        if is_transient(exc):  # no file's fault, and none can complete: the worker loop waits
            raise
        logger.exception("group of %d files: completing together failed", len(members))
        for member, mark in zip(members, marks, strict=True):
            member.log.rewind(mark)
        return [m for m in members if _complete_alone(ctx, m)]
    ctx.next_jobs = next_jobs
    return done


def _complete_alone(ctx: WorkerContext, member: Member) -> bool:
    """Complete one file in its own transaction; a failure fails that file only."""
    with (
        failure_recorded(ctx, member.job),
        member.log.flushed_on_error(ctx.db),
        ctx.db.session() as session,
    ):
        return bool(_complete_all(ctx, session, [member]))
    return False


def process_group(ctx: WorkerContext, members: list[Member]) -> list[Member]:
    """Read every file of the group, evaluate them together and complete them; the members
    this worker completed (the others failed alone, or were lost with their lease)."""
    ctx.next_jobs = []
    read: list[Member] = []
    for member in members:
        ctx.current, ctx.current_started = member.job, time.time()
        ctx.progress.events = 0
        with failure_recorded(ctx, member.job), member.log.flushed_on_error(ctx.db):
            member.read(ctx)
            read.append(member)
    ctx.current = None
    try:
        evaluate_together(read)
    except Exception:  # isolation boundary: the group's attempt fails, its files retry
        logger.exception("group of %d files: evaluation failed", len(read))
        for member in read:
            member.log.flush_alone(ctx.db)
            queue.fail(ctx.db, member.job.id, ctx.worker_id, "evaluation failed", permanent=False)
        return []
    if not read:
        return []
    bundle = write_bundle(ctx, read)
    done = complete_together(ctx, read)
    if bundle is not None and not any(m.outcome.bundle == bundle for m in done):
        bundle.unlink(missing_ok=True)  # no completed file refers to it
    return done

"""A worker process: claim a job, run `process_file`, repeat; heartbeat meanwhile.

The process exits (to be replaced by the pool) after `worker_max_tasks` files or when its RSS
passes `worker_max_rss_mb` between files, so memory can never creep across a long run.

Under a pool, the main thread shows the pool which file it starts, and a pulse thread shows
that the interpreter still runs, in memory shared with the pool (`pool.WorkerSlot`): the
pool's bounds must hold when a native call never returns and starves the heartbeat thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from casescope.allocators import use_system_arrow_pool
from casescope.collector import tune_collector
from casescope.config import Settings
from casescope.detect.exclusions import ExclusionSet
from casescope.errors import PermanentError
from casescope.hunt.ioc import Ioc
from casescope.hunt.matcher import compile_iocs
from casescope.jobs.analyzers import IocAnalyzer, SigmaAnalyzer
from casescope.jobs.case_iocs import enabled_iocs, ioc_set_hash
from casescope.jobs.context import Analyzer, FileInfo, WorkerContext, file_info, file_infos
from casescope.jobs.correlations import run_correlations
from casescope.jobs.group import Member, process_group
from casescope.jobs.pipeline import PERSIST_STEPS, failure_recorded, process_file
from casescope.jobs.pool import PULSE_SECONDS, WorkerSlot
from casescope.jobs.registry import register, rss_mb, unregister
from casescope.jobs.slices import work_slice
from casescope.model.db import Database
from casescope.model.enums import FileStatus, Operation
from casescope.model.outage import (
    is_conflict,
    is_transient,
    note_reachable,
    note_transient,
    ride_out,
)
from casescope.model.tables import EvidenceFile, WorkerRecord
from casescope.store.exclusions import case_exclusions
from casescope.store.rulesets import load_active, manifest_of
from casescope.workqueue import queue, slices
from casescope.workqueue.slices import ClaimedSlice

logger = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 0.25


class Heartbeat(threading.Thread):
    """Renews the leases of the worker's jobs and reports progress; exits if orphaned."""

    def __init__(self, ctx: WorkerContext, parent_pid: int) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.ctx = ctx
        self.parent_pid = parent_pid
        self.tasks_done = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.ctx.settings.heartbeat_seconds):
            if os.getppid() != self.parent_pid:
                logger.error("worker %s: pool process is gone, exiting", self.ctx.worker_id)
                os._exit(3)
            try:
                self.beat()
            except Exception as exc:  # isolation boundary: a missed beat must not kill the worker
                # during an outage the next beat renews, or the lease runs out and the worker
                # loop drops the file once the database is back
                if not note_transient(
                    exc, f"worker {self.ctx.worker_id} heartbeat", self.ctx.settings
                ):
                    logger.exception("worker %s: heartbeat failed", self.ctx.worker_id)
            else:
                note_reachable()

    def beat(self) -> None:
        ctx = self.ctx
        claimed, job, started = list(ctx.claimed), ctx.current, ctx.current_started
        settings = ctx.settings
        queue.renew_leases(ctx.db, [j.id for j in claimed], ctx.worker_id, settings.lease_seconds)
        if (part := ctx.slice) is not None:
            slices.renew(ctx.db, part, ctx.worker_id, settings.lease_seconds)
        with ctx.db.session() as session:
            if job is not None:
                session.execute(
                    update(EvidenceFile)
                    .where(EvidenceFile.id == job.file_id)
                    .values(events_processed=ctx.progress.events)
                )
            session.execute(
                update(WorkerRecord)
                .where(WorkerRecord.id == ctx.worker_id)
                .values(
                    heartbeat_at=time.time(),
                    rss_mb=rss_mb(),
                    current_job_id=job.id if job else None,
                    current_file_id=job.file_id if job else None,
                    job_started_at=started if job else None,
                    tasks_done=self.tasks_done,
                )
            )

    def stop(self) -> None:
        self._stop_event.set()


class Pulse(threading.Thread):
    """Writes the time to the pool's slot every `PULSE_SECONDS`: proof that the interpreter
    still runs Python code. Apart from the heartbeat, which may wait on the database."""

    def __init__(self, slot: WorkerSlot) -> None:
        super().__init__(name="pulse", daemon=True)
        self.slot = slot
        self._stop_event = threading.Event()

    def run(self) -> None:
        self.slot.pulse()
        while not self._stop_event.wait(PULSE_SECONDS):
            self.slot.pulse()

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        self.slot.stop_pulse()


class PolicedContext(WorkerContext):
    """A worker context that shows the pool what it holds: `claimed` (set by the worker
    loop) and `current`, the file being read (set by the main thread when a file starts and
    cleared after: `run_jobs`, `process_group`). Each change is also written to the pool's
    slot: a few stores, no transaction."""

    slot: WorkerSlot | None = None
    _current: queue.ClaimedJob | None = None
    _claimed: list[queue.ClaimedJob]

    @property
    def claimed(self) -> list[queue.ClaimedJob]:
        return self._claimed

    @claimed.setter
    def claimed(self, jobs: list[queue.ClaimedJob]) -> None:
        self._claimed = jobs
        if self.slot is not None:
            self.slot.hold(len(jobs))

    @property
    def current(self) -> queue.ClaimedJob | None:
        return self._current

    @current.setter
    def current(self, job: queue.ClaimedJob | None) -> None:
        self._current = job
        if self.slot is None:
            return
        if job is None:
            self.slot.clear()
        else:
            self.slot.start(job.id, job.file_id)


#: Compiled case exclusions a worker keeps (one per case and exclusion set).
EXCLUSION_CACHE = 8


def _case_exclusions(ctx: WorkerContext, session: Session, case_id: int) -> ExclusionSet | None:
    """The case's exclusions, compiled once per (case, exclusion set) in this worker."""
    exclusions = case_exclusions(session, case_id)
    if not exclusions:
        return None
    key = (case_id, repr(sorted(exclusions, key=lambda e: e.id)))
    found = ctx.exclusion_sets.get(key)
    if found is None:
        if len(ctx.exclusion_sets) >= EXCLUSION_CACHE:
            ctx.exclusion_sets.pop(next(iter(ctx.exclusion_sets)))
        found = ctx.exclusion_sets[key] = ExclusionSet.build(exclusions)
    return found


def _sigma_analyzer(
    ctx: WorkerContext,
    job: queue.ClaimedJob,
    session: Session,
    manifests: dict[str, dict[str, str] | None],
    exclusions: ExclusionSet | None,
) -> SigmaAnalyzer | None:
    """Sigma with the set `_prepare` loaded; `sigma_only` evaluates only changed rules
    (`manifests`: those of previous sets, read once per group). New hits that the case's
    exclusions cover are written hidden."""
    if ctx.rules is None:
        return None
    batch_events = ctx.settings.sigma_batch_events
    if job.operation is not Operation.SIGMA_ONLY:
        return SigmaAnalyzer(ctx.rules, batch_events=batch_events, exclusions=exclusions)
    previous_hash = session.scalar(
        select(EvidenceFile.sigma_ruleset).where(EvidenceFile.id == job.file_id)
    )
    if previous_hash and previous_hash not in manifests:
        manifests[previous_hash] = manifest_of(ctx.db, previous_hash)
    previous = manifests.get(previous_hash) if previous_hash else None
    return SigmaAnalyzer(
        ctx.rules, previous_hash, previous, batch_events=batch_events, exclusions=exclusions
    )


#: Compiled IOC matchers a worker keeps (one per case and IOC set).
IOC_MATCHER_CACHE = 8


def _ioc_analyzer(
    ctx: WorkerContext,
    job: queue.ClaimedJob,
    iocs: list[Ioc],
    case_id: int,
    iocs_hash: str,
) -> IocAnalyzer | None:
    """The case's enabled IOCs, compiled once per (case, IOC set) in this worker.

    None when the case has no enabled IOCs and the job is not a re-hunt: hits of disabled or
    removed IOCs are deleted when they change, so there is nothing to replace.
    """
    if not iocs and job.operation is not Operation.IOC_ONLY:
        return None
    key = (case_id, iocs_hash)
    matcher = ctx.ioc_matchers.get(key)
    if matcher is None:
        if len(ctx.ioc_matchers) >= IOC_MATCHER_CACHE:
            ctx.ioc_matchers.pop(next(iter(ctx.ioc_matchers)))
        matcher = ctx.ioc_matchers[key] = compile_iocs(iocs)
    return IocAnalyzer(matcher, case_id)


Prepared = tuple[queue.ClaimedJob, FileInfo, list[Analyzer]]


@dataclass
class _CaseFacts:
    """What `_prepare` reads once per case of a group: its exclusions and IOCs."""

    case_id: int
    exclusions: ExclusionSet | None
    iocs: list[Ioc]
    ioc_hash: str


def _case_facts(ctx: WorkerContext, session: Session, case_id: int) -> _CaseFacts:
    iocs = enabled_iocs(session, case_id)
    exclusions = _case_exclusions(ctx, session, case_id)
    return _CaseFacts(case_id, exclusions, iocs, ioc_set_hash(iocs))


def _prepare(ctx: WorkerContext, jobs: list[queue.ClaimedJob]) -> list[Prepared]:
    """Each job's file and analyzers (only those whose step its operation runs), read in one
    transaction, with a few queries for the whole group (files, segments, and each case's
    exclusions and IOCs once). A job that cannot be prepared (its file is gone) is failed
    here."""
    prepared: list[Prepared] = []
    facts: dict[int, _CaseFacts] = {}
    manifests: dict[str, dict[str, str] | None] = {}
    if any(FileStatus.SIGMA in PERSIST_STEPS[job.operation] for job in jobs):
        ctx.rules = load_active(ctx.settings, ctx.rules)  # once per group, not per file
    with ctx.db.read() as session:
        infos = file_infos(
            session, [j.file_id for j in jobs], {j.file_id: j.operation for j in jobs}
        )
        for job in jobs:
            with failure_recorded(ctx, job):  # this file fails alone
                info = infos.get(job.file_id)
                if info is None:
                    raise PermanentError(f"file {job.file_id} no longer exists")
                if info.case_id not in facts:
                    facts[info.case_id] = _case_facts(ctx, session, info.case_id)
                analyzers = _analyzers(ctx, job, session, manifests, facts[info.case_id])
                prepared.append((job, info, analyzers))
    return prepared


def _analyzers(
    ctx: WorkerContext,
    job: queue.ClaimedJob,
    session: Session,
    manifests: dict[str, dict[str, str] | None],
    case: _CaseFacts,
) -> list[Analyzer]:
    """The analyzers of the steps `job`'s operation runs."""
    steps = PERSIST_STEPS[job.operation]
    sigma = ioc = None
    if FileStatus.SIGMA in steps:
        sigma = _sigma_analyzer(ctx, job, session, manifests, case.exclusions)
    if FileStatus.IOC in steps:
        ioc = _ioc_analyzer(ctx, job, case.iocs, case.case_id, case.ioc_hash)
    return [a for a in (sigma, ioc) if a is not None]


def _correlate_when_case_done(ctx: WorkerContext, case_id: int) -> None:
    """Correlation rules run over a whole case, after its last queued file is done."""
    if ctx.rules is None or not ctx.rules.ruleset.correlations:
        return
    if queue.case_has_active_jobs(ctx.db, case_id):
        return
    try:
        run_correlations(ctx.db, ctx.rules, case_id)
    except Exception as exc:  # isolation boundary: the files themselves are done
        if is_transient(exc):
            raise
        logger.exception("case %d: correlation rules failed", case_id)


def run_jobs(ctx: WorkerContext, jobs: list[queue.ClaimedJob]) -> None:
    """Process claimed jobs: one file streamed by `process_file`, a group of small files
    together (jobs/group.py). Failures are recorded per file, never raised."""
    ctx.next_jobs = []
    prepared = _prepare(ctx, jobs)
    if len(prepared) == 1:
        job, info, analyzers = prepared[0]
        ctx.current, ctx.current_started = job, time.time()
        done_cases: set[int] = set()
        with failure_recorded(ctx, job):
            if process_file(ctx, job, analyzers, info):
                done_cases.add(info.case_id)
        ctx.current = None
    else:
        members = [Member.of(ctx, job, info, analyzers) for job, info, analyzers in prepared]
        done_cases = {m.info.case_id for m in process_group(ctx, members)}
    for case_id in sorted(done_cases):
        _correlate_when_case_done(ctx, case_id)


def _should_recycle(settings: Settings, tasks_done: int) -> str | None:
    if tasks_done >= settings.worker_max_tasks:
        return f"{tasks_done} tasks done"
    rss = rss_mb()
    if rss > settings.worker_max_rss_mb:
        return f"RSS {rss:.0f} MB over {settings.worker_max_rss_mb} MB"
    return None


def _files_to_claim(settings: Settings, tasks_done: int, *, check_rss: bool = False) -> int:
    """How many files the worker may claim now: a group, within its tasks before recycling
    (0 when it is due for recycling)."""
    if check_rss and _should_recycle(settings, tasks_done) is not None:
        return 0
    return max(0, min(settings.group_max_files, settings.worker_max_tasks - tasks_done))


def worker_main(
    settings: Settings, worker_id: str, exit_when_idle: bool, slot: WorkerSlot | None = None
) -> None:
    """Entry point of one worker process (`slot`: shared with its pool, if any)."""
    pulse = Pulse(slot) if slot is not None else None
    if pulse is not None:
        pulse.start()
    tune_collector()
    use_system_arrow_pool()
    # no transaction of a worker waits on anything but the database: one idle for a whole
    # lease is a stopped process, whose files are others' by then, and so are its row locks
    db = Database(settings, run_migrations=False, idle_transaction_seconds=settings.lease_seconds)
    ctx = PolicedContext(settings=settings, db=db, worker_id=worker_id)
    ctx.slot = slot
    ride_out(
        settings, f"worker {worker_id} start", lambda: register(db, worker_id, settings.host_name)
    )
    heartbeat = Heartbeat(ctx, os.getppid())
    heartbeat.start()
    try:
        _work(ctx, heartbeat, exit_when_idle)
    finally:
        heartbeat.stop()
        if pulse is not None:
            pulse.stop()
        _leave(db, worker_id)


def _claim(ctx: WorkerContext, tasks_done: int) -> list[queue.ClaimedJob]:
    settings = ctx.settings
    files = _files_to_claim(settings, tasks_done)
    return ride_out(
        settings,
        f"worker {ctx.worker_id} claim",
        lambda: queue.claim_group(
            ctx.db, ctx.worker_id, settings.lease_seconds, files, settings.group_max_bytes
        ),
    )


def _slice_analyzers(ctx: WorkerContext, part: ClaimedSlice) -> tuple[FileInfo, list[Analyzer]]:
    """The file of a slice another worker owns, and the analyzers its job runs (`_prepare`
    for one job)."""
    job = queue.ClaimedJob(part.job_id, part.file_id, part.operation, part.attempt)
    ctx.rules = load_active(ctx.settings, ctx.rules)
    with ctx.db.read() as session:
        info = file_info(session, part.file_id, part.operation)
        analyzers = _analyzers(ctx, job, session, {}, _case_facts(ctx, session, info.case_id))
    return info, analyzers


def _help_with_slice(ctx: WorkerContext) -> bool:
    """With nothing to claim, parse a slice of a large file another worker owns; whether
    there was one. Its failure is the owner's to report: it fails the owner's attempt."""
    settings = ctx.settings
    part = ride_out(
        settings,
        f"worker {ctx.worker_id} slice claim",
        lambda: slices.claim(ctx.db, ctx.worker_id, settings.lease_seconds),
    )
    if part is None:
        return False
    try:
        info, analyzers = _slice_analyzers(ctx, part)
        work_slice(ctx, part, info, analyzers)
    except Exception as exc:  # isolation boundary: one slice; recorded on it by work_slice
        if is_transient(exc):
            raise
        logger.exception(
            "worker %s: slice %d of file %d failed", ctx.worker_id, part.number, part.file_id
        )
    return True


def _run_or_drop(ctx: WorkerContext, jobs: list[queue.ClaimedJob]) -> bool:
    """`run_jobs`; False when the metadata DB went away meanwhile (or rolled a transaction
    back as a conflict): once it answers, the worker's running jobs are queued again for
    anyone (a file whose lease ran out during an outage is already another's), so no file
    is lost or completed twice, and no attempt is spent."""
    try:
        run_jobs(ctx, jobs)
        return True
    except Exception as exc:
        if not note_transient(exc, f"worker {ctx.worker_id} processing", ctx.settings):
            raise
        conflict = is_conflict(exc)
    ctx.current, ctx.next_jobs, ctx.claimed = None, [], []
    if conflict:
        reason = "a transaction conflict (deadlock) while the file was processed"
    else:
        reason = "the metadata database went away while the file was processed"
    released = ride_out(
        ctx.settings,
        f"worker {ctx.worker_id} release",
        lambda: queue.release_after_outage(ctx.db, ctx.worker_id, reason),
    )
    logger.warning("worker %s: %s; %d job(s) queued again", ctx.worker_id, reason, released)
    return False


def _work(ctx: PolicedContext, heartbeat: Heartbeat, exit_when_idle: bool) -> None:
    """Claim and process jobs until idle (with `exit_when_idle`) or due for recycling."""
    settings, worker_id = ctx.settings, ctx.worker_id
    jobs: list[queue.ClaimedJob] = []
    while True:
        jobs = jobs or _claim(ctx, heartbeat.tasks_done)
        if not jobs and _help_with_slice(ctx):
            if reason := _should_recycle(settings, heartbeat.tasks_done):
                logger.info("worker %s recycles: %s", worker_id, reason)
                return
            continue
        if not jobs:
            what = f"worker {worker_id} idle check"
            if exit_when_idle and not ride_out(
                settings, what, lambda: queue.has_active_jobs(ctx.db)
            ):
                return
            time.sleep(IDLE_POLL_SECONDS)
            continue
        ctx.claimed = jobs
        # The next jobs are claimed in the completing transaction unless these are last.
        done = heartbeat.tasks_done + len(jobs)
        ctx.claim_next = lambda done=done: _files_to_claim(settings, done, check_rss=True)
        if not _run_or_drop(ctx, jobs):
            jobs = []
            continue
        jobs, ctx.next_jobs = ctx.next_jobs, []
        ctx.claimed = jobs
        heartbeat.tasks_done = done
        if not jobs and (reason := _should_recycle(settings, done)):
            logger.info("worker %s recycles: %s", worker_id, reason)
            return


def _leave(db: Database, worker_id: str) -> None:
    """Remove the worker's record; during an outage it is left to go stale (nothing waits
    on a stale record: the pool releases a dead worker's jobs, and leases run out)."""
    try:
        unregister(db, worker_id)
    except Exception as exc:
        if not note_transient(exc, f"worker {worker_id} exit", db.settings):
            raise
    finally:
        db.dispose()

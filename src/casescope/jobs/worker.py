"""A worker process: claim a job, run `process_file`, repeat; heartbeat meanwhile.

The process exits (to be replaced by the pool) after `worker_max_tasks` files or when its RSS
passes `worker_max_rss_mb` between files, so memory can never creep across a long run.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from casescope.config import Settings
from casescope.detect.ruleset import load_active, manifest_of
from casescope.errors import PermanentError, disk_full_message
from casescope.hunt import compile_iocs
from casescope.jobs import queue
from casescope.jobs.analyzers import IocAnalyzer, SigmaAnalyzer
from casescope.jobs.pipeline import (
    PERSIST_STEPS,
    Analyzer,
    FileInfo,
    WorkerContext,
    file_info,
    process_file,
)
from casescope.jobs.registry import register, rss_mb, unregister
from casescope.model.db import Database
from casescope.model.enums import FileStatus, JobState, Operation
from casescope.model.tables import EvidenceFile, WorkerRecord
from casescope.services.correlations import run_correlations
from casescope.services.iocs import enabled_iocs, ioc_set_hash

logger = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 0.25


class Heartbeat(threading.Thread):
    """Renews the current job's lease and reports progress; exits the process if orphaned."""

    def __init__(self, ctx: WorkerContext, parent_pid: int) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.ctx = ctx
        self.parent_pid = parent_pid
        self.job: queue.ClaimedJob | None = None
        self.job_started: float | None = None
        self.tasks_done = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.ctx.settings.heartbeat_seconds):
            if os.getppid() != self.parent_pid:
                logger.error("worker %s: pool process is gone, exiting", self.ctx.worker_id)
                os._exit(3)
            try:
                self.beat()
            except Exception:  # isolation boundary: a missed beat must not kill the worker
                logger.exception("worker %s: heartbeat failed", self.ctx.worker_id)

    def beat(self) -> None:
        ctx, job = self.ctx, self.job
        if job is not None:
            queue.renew_lease(ctx.db, job.id, ctx.worker_id, ctx.settings.lease_seconds)
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
                    job_started_at=self.job_started,
                    tasks_done=self.tasks_done,
                )
            )

    def stop(self) -> None:
        self._stop_event.set()


def _sigma_analyzer(ctx: WorkerContext, job: queue.ClaimedJob) -> SigmaAnalyzer | None:
    """Sigma with the set active right now; `sigma_only` evaluates only changed rules."""
    ctx.rules = load_active(ctx.settings, ctx.rules)
    if ctx.rules is None:
        return None
    batch_events = ctx.settings.sigma_batch_events
    if job.operation is not Operation.SIGMA_ONLY:
        return SigmaAnalyzer(ctx.rules, batch_events=batch_events)
    with ctx.db.read() as session:
        previous_hash = session.scalar(
            select(EvidenceFile.sigma_ruleset).where(EvidenceFile.id == job.file_id)
        )
    previous = manifest_of(ctx.db, previous_hash)
    return SigmaAnalyzer(ctx.rules, previous_hash, previous, batch_events=batch_events)


#: Compiled IOC matchers a worker keeps (one per case and IOC set).
IOC_MATCHER_CACHE = 8


def _ioc_analyzer(
    ctx: WorkerContext, job: queue.ClaimedJob, session: Session, case_id: int
) -> IocAnalyzer | None:
    """The case's enabled IOCs, compiled once per (case, IOC set) in this worker.

    None when the case has no enabled IOCs and the job is not a re-hunt: hits of disabled or
    removed IOCs are deleted when they change, so there is nothing to replace.
    """
    iocs = enabled_iocs(session, case_id)
    if not iocs and job.operation is not Operation.IOC_ONLY:
        return None
    key = (case_id, ioc_set_hash(iocs))
    matcher = ctx.ioc_matchers.get(key)
    if matcher is None:
        if len(ctx.ioc_matchers) >= IOC_MATCHER_CACHE:
            ctx.ioc_matchers.pop(next(iter(ctx.ioc_matchers)))
        matcher = ctx.ioc_matchers[key] = compile_iocs(iocs)
    return IocAnalyzer(matcher, case_id)


def _prepare(ctx: WorkerContext, job: queue.ClaimedJob) -> tuple[FileInfo, list[Analyzer]]:
    """The job's file and its analyzers (only those whose step the operation runs), read in
    one transaction."""
    steps = PERSIST_STEPS[job.operation]
    sigma = _sigma_analyzer(ctx, job) if FileStatus.SIGMA in steps else None
    with ctx.db.read() as session:
        info = file_info(session, job.file_id, job.operation)
        ioc = _ioc_analyzer(ctx, job, session, info.case_id) if FileStatus.IOC in steps else None
    return info, [a for a in (sigma, ioc) if a is not None]


def _correlate_when_case_done(ctx: WorkerContext, case_id: int) -> None:
    """Correlation rules run over a whole case, after its last queued file is done."""
    if ctx.rules is None or not ctx.rules.ruleset.correlations:
        return
    if queue.case_has_active_jobs(ctx.db, case_id):
        return
    try:
        run_correlations(ctx.db, ctx.rules, case_id)
    except Exception:  # isolation boundary: the file itself is done
        logger.exception("case %d: correlation rules failed", case_id)


def run_job(ctx: WorkerContext, job: queue.ClaimedJob) -> None:
    """Process one claimed job; failures are recorded, never raised."""
    try:
        info, analyzers = _prepare(ctx, job)
        if process_file(ctx, job, analyzers, info):
            _correlate_when_case_done(ctx, info.case_id)
    except PermanentError as exc:
        logger.warning("job %d file %d failed: %s", job.id, job.file_id, exc)
        queue.fail(ctx.db, job.id, ctx.worker_id, str(exc), permanent=True)
    except Exception as exc:  # isolation boundary: one file's failure never stops the worker
        if disk_full := disk_full_message(exc):  # retrying cannot help until space is freed
            logger.error("job %d file %d failed: %s", job.id, job.file_id, disk_full)
            queue.fail(ctx.db, job.id, ctx.worker_id, disk_full, permanent=True)
            return
        logger.exception("job %d file %d: attempt %d failed", job.id, job.file_id, job.attempts)
        detail = f"{type(exc).__name__}: {exc}"
        state = queue.fail(ctx.db, job.id, ctx.worker_id, detail, permanent=False)
        if state is JobState.FAILED:
            logger.debug("job %d traceback:\n%s", job.id, traceback.format_exc())


def _should_recycle(settings: Settings, tasks_done: int) -> str | None:
    if tasks_done >= settings.worker_max_tasks:
        return f"{tasks_done} tasks done"
    rss = rss_mb()
    if rss > settings.worker_max_rss_mb:
        return f"RSS {rss:.0f} MB over {settings.worker_max_rss_mb} MB"
    return None


def worker_main(settings: Settings, worker_id: str, exit_when_idle: bool) -> None:
    """Entry point of one worker process."""
    db = Database(settings, run_migrations=False)
    ctx = WorkerContext(settings=settings, db=db, worker_id=worker_id)
    register(db, worker_id)
    heartbeat = Heartbeat(ctx, os.getppid())
    heartbeat.start()
    try:
        job: queue.ClaimedJob | None = None
        while True:
            job = job or queue.claim(db, worker_id, settings.lease_seconds)
            if job is None:
                if exit_when_idle and not queue.has_active_jobs(db):
                    return
                time.sleep(IDLE_POLL_SECONDS)
                continue
            heartbeat.job, heartbeat.job_started = job, time.time()
            # The next job is claimed in the completing transaction unless this is the last.
            done = heartbeat.tasks_done + 1
            ctx.claim_next = lambda done=done: _should_recycle(settings, done) is None
            run_job(ctx, job)
            job, ctx.next_job = ctx.next_job, None
            heartbeat.job, heartbeat.job_started = None, None
            heartbeat.tasks_done = done
            if job is None and (reason := _should_recycle(settings, done)):
                logger.info("worker %s recycles: %s", worker_id, reason)
                return
    finally:
        heartbeat.stop()
        unregister(db, worker_id)
        db.dispose()

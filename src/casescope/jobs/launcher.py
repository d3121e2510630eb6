"""Start a worker pool in the background and watch it (used by `ingest`, `serve`, `ioc`, `jobs`).

How a pool process is started (its command, environment, stderr): `jobs/pool_process.py`.

`PoolKeeper` is what the process that started a pool holds while it waits: when the pool dies
(killed, crashed) the jobs of its workers are released at once instead of after their leases,
and a new pool is started; a pool that keeps dying as it starts is not restarted forever:
after `MAX_EARLY_DEATHS` in a row the keeper gives up with the pool's own error.
"""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import psutil
from sqlalchemy import func, select

from casescope.config import Settings
from casescope.errors import CasescopeError
from casescope.jobs.pool_process import StartedPool, start_pool
from casescope.jobs.registry import (
    live_workers,
    pool_worker_pids,
    unregister_pool,
    worker_id_prefix,
)
from casescope.model.db import Database
from casescope.model.enums import AuditAction, JobState
from casescope.model.tables import AuditRecord, Job
from casescope.workqueue import queue

logger = logging.getLogger(__name__)

#: A pool that exits with an error sooner than this after its start never got going.
EARLY_DEATH_SECONDS = 10.0
#: Early deaths in a row after which the keeper stops restarting the pool.
MAX_EARLY_DEATHS = 3
#: How long a dead pool's workers may take to be gone before their jobs are released anyway:
#: the kernel kills them within milliseconds of the pool (jobs/template.py); the bound only
#: keeps a pid reused meanwhile by another process from holding the release.
WORKER_EXIT_SECONDS = 5.0


class PoolStartError(CasescopeError):
    """The worker pool dies as it starts, again and again; the message carries its error."""


def ensure_workers(
    settings: Settings, db: Database, *, workers: int | None = None, detach: bool = False
) -> subprocess.Popen | None:
    """Start a pool unless live workers exist; returns its process (for `--no-wait`)."""
    if live_workers(db, stale_after=settings.heartbeat_seconds * 3):
        return None
    return start_pool(settings, workers=workers, detach=detach).process


def release_pool(db: Database, pool_pid: int, reason: str, host: str) -> int:
    """A pool of this host died (its workers die with it): retry their jobs now, not after
    the leases. Only once its workers are gone: one still running could claim files after
    the release and hold them until their leases run out."""
    prefix = worker_id_prefix(pool_pid, host)
    _wait_for_exit(pool_worker_pids(db, prefix))
    released = queue.release_workers_like(db, prefix, reason)
    unregister_pool(db, prefix)
    return released


def _wait_for_exit(pids: list[int]) -> None:
    processes = []
    for pid in pids:
        try:
            processes.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(processes, timeout=WORKER_EXIT_SECONDS)


def record_pool_failure(db: Database, detail: str) -> None:
    """Leave the pool's error where `status` and the System page look for it."""
    with db.session() as session:
        session.add(
            AuditRecord(actor="system", action=AuditAction.POOL_FAILED, ok=False, detail=detail)
        )


@dataclass(frozen=True)
class PoolFailure:
    at: str  # ISO 8601, UTC
    detail: str


def pool_failure_since_work(db: Database) -> PoolFailure | None:
    """The last time a pool was given up on, if work has been waiting since (queued before
    it): what `status` and the System page show while no worker runs."""
    with db.read() as session:
        oldest_waiting = session.scalar(
            select(func.min(Job.created_at)).where(Job.state == JobState.QUEUED)
        )
        if oldest_waiting is None:
            return None
        row = session.execute(
            select(AuditRecord.at, AuditRecord.detail)
            .where(AuditRecord.action == AuditAction.POOL_FAILED)
            .order_by(AuditRecord.id.desc())
            .limit(1)
        ).first()
    if row is None or _aware(row.at) < _aware(oldest_waiting):
        return None
    return PoolFailure(_aware(row.at).isoformat(timespec="seconds"), row.detail)


def _aware(at: datetime) -> datetime:
    """SQLite hands back naive datetimes for the UTC ones stored."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


class PoolKeeper:
    """Keeps a worker pool running for the process that waits on the queue."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        workers: int | None = None,
        pool: StartedPool | None = None,
    ) -> None:
        """`pool`: one started ahead of the work (`pool_process.start_pool(await_work=...)`),
        kept as this keeper's own."""
        self.settings = settings
        self.db = db
        self.workers = workers
        self.pool = pool
        self.early_deaths = 0

    @property
    def process(self) -> subprocess.Popen | None:
        return self.pool.process if self.pool else None

    def ensure(self) -> None:
        """Start a pool unless ours is alive or other live workers serve the queue."""
        if self.pool is not None and self.pool.process.poll() is None:
            return
        if live_workers(self.db, stale_after=self.settings.heartbeat_seconds * 3):
            return
        self.pool = start_pool(self.settings, workers=self.workers)

    def watch(self, work_left: bool) -> None:
        """Called while waiting: if our pool died, release its jobs at once and (while work
        is left) start another; raises PoolStartError when it keeps dying as it starts."""
        pool = self.pool
        if pool is None or pool.process.poll() is None:
            return
        self.pool = None
        code = pool.process.returncode
        lived = time.monotonic() - pool.started
        if code != 0:
            reason = f"worker pool {pool.process.pid} died (exit code {code})"
            released = release_pool(self.db, pool.process.pid, reason, self.settings.host_name)
            logger.warning("%s after %.1f s; released %d job(s)", reason, lived, released)
            self._count_death(pool, code, lived)
        if work_left:
            self.ensure()

    def _count_death(self, pool: StartedPool, code: int, lived: float) -> None:
        if lived >= EARLY_DEATH_SECONDS:
            self.early_deaths = 0
            return
        self.early_deaths += 1
        if self.early_deaths < MAX_EARLY_DEATHS:
            return
        tail = pool.stderr_tail() or "(it wrote nothing on stderr)"
        message = (
            f"the worker pool died {self.early_deaths} times in a row within "
            f"{EARLY_DEATH_SECONDS:.0f} s of its start (last exit code {code}); its error:\n"
            f"{tail}\n(full output: {pool.stderr_path}; the files stay queued: once the cause "
            "is fixed, `casescope worker --exit-when-idle` processes them)"
        )
        record_pool_failure(self.db, message)
        raise PoolStartError(message)

    def stop(self, timeout: float = 30) -> None:
        """Wait for our pool (it exits by itself once the queue is empty), else end it."""
        if self.pool is None:
            return
        try:
            self.pool.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.pool.end()

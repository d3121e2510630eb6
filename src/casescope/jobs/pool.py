"""The worker pool: N worker processes under a supervisor that replaces and polices them.

The supervisor (the `casescope worker` process) never processes files itself. It
- starts `workers` processes, forked from a template that imported the worker modules and
  opened nothing (multiprocessing's forkserver, `WORKER_MODULES`; spawned on other systems),
- replaces one that exits (recycled after N tasks or its memory limit) or dies (its running
  job is released at once, counting an attempt, instead of waiting for the lease),
- kills one whose current file runs past `file_timeout_seconds`, whose RSS passes
  `worker_hard_rss_mb`, or whose interpreter stopped running Python for `stall_seconds`
  (a native call that never returns, holding the GIL), failing that file with the reason (a
  parse that cannot finish within its bounds must not hang the batch or retry forever).

In team mode (a ClickHouse server over the network) it also loads the files that wait into
the index, in a thread of its own (jobs/host_loader.py).

It learns what each worker is doing from a `WorkerSlot` in memory shared with it, written by
the worker's main thread and pulse thread: never through the database nor a thread that a
stuck call can starve (docs/decisions.md, "The worker pool and its bounds").

Nothing from the directory it was started in may run in it, its template or its workers: it
moves to the home directory and drops that directory from `sys.path` before it starts any,
and they start with `-P` and `PYTHONSAFEPATH` (a bootstrap would otherwise put its working
directory first on the path).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess

import psutil

from casescope.config import Settings
from casescope.jobs.host_loader import HostLoader, hosts_load
from casescope.jobs.pool_clock import PausedTime
from casescope.jobs.registry import live_workers, unregister, worker_id_prefix
from casescope.jobs.template_start import (
    leave_start_directory,
    set_death_signal,
    start_template,
    worker_context,
)
from casescope.logs import setup_logging
from casescope.model.db import Database
from casescope.model.outage import note_transient, ride_out
from casescope.store.index_url import check_index_url
from casescope.workqueue import queue

logger = logging.getLogger(__name__)

SUPERVISE_SECONDS = 0.25
#: A pool started ahead of its work (`--await-work`) looks at the queue this often until the
#: first file is queued: its first workers are forked within this of it (one small query).
AWAIT_POLL_SECONDS = 0.05
#: How often a worker's pulse thread shows that its interpreter still runs Python code.
PULSE_SECONDS = 1.0
#: A shorter stall is never a stuck worker: the GIL changes hands every 5 ms.
MIN_STALL_SECONDS = 5.0


def stall_seconds(settings: Settings) -> float:
    """How long a worker may go without a pulse: half its lease, so a stuck worker is killed
    (and its file blamed) before the lease runs out and another worker re-claims the file."""
    return max(settings.lease_seconds / 2, MIN_STALL_SECONDS)


@dataclass(frozen=True)
class Current:
    """The file a worker is reading, as its pool sees it."""

    job_id: int
    file_id: int
    started: float  # time.monotonic()


class WorkerSlot:
    """What one worker process is doing, in memory shared with its pool.

    The worker's main thread writes how many jobs it holds, and the job whose file it starts
    (cleared after); its pulse thread writes the time every `PULSE_SECONDS`. Plain stores,
    no lock: the reader checks that the start time did not change while it read the job.
    Times are `time.monotonic()` (system wide, and still while the machine sleeps).
    """

    _JOB, _FILE, _STARTED, _PULSE, _HELD = range(5)

    def __init__(self, ctx: BaseContext) -> None:
        self._values = ctx.RawArray(ctypes.c_double, 5)

    def hold(self, jobs: int) -> None:
        self._values[self._HELD] = jobs

    def holds_jobs(self) -> bool:
        return self._values[self._HELD] > 0

    def start(self, job_id: int, file_id: int) -> None:
        values = self._values
        values[self._STARTED] = 0.0  # "none" while the job is written
        values[self._JOB], values[self._FILE] = job_id, file_id
        values[self._STARTED] = time.monotonic()

    def clear(self) -> None:
        self._values[self._STARTED] = 0.0

    def pulse(self) -> None:
        self._values[self._PULSE] = time.monotonic()

    def stop_pulse(self) -> None:
        """The worker is leaving: its stall bound no longer applies."""
        self._values[self._PULSE] = 0.0

    def current(self) -> Current | None:
        values = self._values
        started = values[self._STARTED]
        job_id, file_id = int(values[self._JOB]), int(values[self._FILE])
        if not started or values[self._STARTED] != started:
            return None
        return Current(job_id, file_id, started)

    def silent_for(self, now: float) -> float:
        """Seconds since the last pulse (0 before the first and after `stop_pulse`)."""
        pulse = self._values[self._PULSE]
        return now - pulse if pulse else 0.0


def _die_with_pool(pool_pid: int) -> None:
    """On Linux, the kernel kills the worker when the pool dies, even if a stuck native call
    keeps its own orphan check (the heartbeat thread) from ever running: the death signal
    follows the worker's parent, the forkserver, whose own follows the pool
    (`jobs/template.py`)."""
    if sys.platform != "linux":
        return
    set_death_signal()
    if not _child_of(pool_pid):  # the pool, or the forkserver, died before the request
        os._exit(3)


def _child_of(pool_pid: int) -> bool:
    """Whether this process's parent is the pool or its forkserver (the pool's child)."""
    parent = os.getppid()
    if parent == pool_pid:
        return True
    try:
        return psutil.Process(parent).ppid() == pool_pid
    except psutil.Error:
        return False


def _child_entry(
    settings_data: dict, worker_id: str, exit_when_idle: bool, slot: WorkerSlot, pool_pid: int
) -> None:
    _die_with_pool(pool_pid)
    # imported here, in the child (most of it already by the forkserver): the pool process
    # itself never needs the Sigma engine, polars or the parsers, and holding them would cost
    # tens of MB for the pool's lifetime (`bench/large_files.py` prints the supervisor's peak)
    from casescope.jobs.worker import worker_main
    from casescope.logs import setup_logging

    settings = Settings(**settings_data)
    setup_logging(settings, role=f"worker {worker_id}")
    worker_main(settings, worker_id, exit_when_idle, slot)


@dataclass
class Child:
    worker_id: str
    process: BaseProcess
    slot: WorkerSlot
    _handle: psutil.Process | None = field(default=None, repr=False)

    def rss_mb(self) -> float:
        """Its resident memory, measured by the pool (a psutil handle kept: making one per
        check would cost more than the check)."""
        try:
            if self._handle is None and self.process.pid is not None:
                self._handle = psutil.Process(self.process.pid)
            return self._handle.memory_info().rss / 2**20 if self._handle else 0.0
        except psutil.Error:
            return 0.0


class WorkerPool:
    def __init__(
        self,
        settings: Settings,
        size: int,
        *,
        exit_when_idle: bool = False,
        await_work: float | None = None,
    ) -> None:
        """`await_work`: a pool started before its command queued a file (`ingest` starts it
        first, `jobs/pool_process.py`) waits this many seconds for one before an empty
        queue makes it done."""
        self.settings = settings
        self.size = size
        self.exit_when_idle = exit_when_idle
        self._await_until = None if await_work is None else time.monotonic() + await_work
        # as its workers': a stopped pool must not keep a dead worker's jobs locked
        self.db = Database(settings, idle_transaction_seconds=settings.lease_seconds)
        self.children: list[Child] = []
        self._ctx = worker_context()
        self._stopping = False
        self.stall_seconds = stall_seconds(settings)
        self.paused = PausedTime(max(settings.file_timeout_seconds, self.stall_seconds) * 2)

    def _spawn(self) -> None:
        worker_id = (
            f"{worker_id_prefix(os.getpid(), self.settings.host_name)}{uuid.uuid4().hex[:8]}"
        )
        slot = WorkerSlot(self._ctx)
        process = self._ctx.Process(
            target=_child_entry,
            args=(self.settings.model_dump(), worker_id, self.exit_when_idle, slot, os.getpid()),
            name=f"casescope-worker-{worker_id}",
        )
        process.start()
        self.children.append(Child(worker_id, process, slot))
        logger.info("started worker %s (pid %s)", worker_id, process.pid)

    def _reap(self) -> None:
        for child in list(self.children):
            if child.process.is_alive():
                continue
            code = child.process.exitcode
            if code != 0:
                ended = self._stopping and code == -signal.SIGTERM  # by `shutdown`
                reason = (
                    f"worker process {child.process.pid} ended: the worker pool was stopped"
                    if ended
                    else f"worker process {child.process.pid} died (exit code {code})"
                )
                release = queue.release_stopped if ended else queue.release_worker
                released = release(self.db, child.worker_id, reason)
                log = logger.info if ended else logger.warning
                log("%s; released %d job(s)", reason, released)
            unregister(self.db, child.worker_id)
            # only now: a database outage above leaves it to be reaped again once it is back
            self.children.remove(child)

    def _over_bound(self, child: Child, current: Current | None, now: float) -> str | None:
        """Why `child` must be killed now, or None. Measured here, from the child's process
        and its shared slot: a worker stuck in a native call cannot report anything."""
        settings = self.settings
        # only a worker holding jobs: one over the bound from its start must get to fail them
        rss = child.rss_mb() if child.slot.holds_jobs() else 0.0
        if rss > settings.worker_hard_rss_mb:
            return (
                f"processing exceeded the memory bound "
                f"({rss:.0f} MB > {settings.worker_hard_rss_mb} MB)"
            )
        if current is not None:
            took = now - current.started - self.paused.within(current.started, now)
            if took > settings.file_timeout_seconds:
                return f"processing exceeded the time bound ({settings.file_timeout_seconds:.0f} s)"
        silent = child.slot.silent_for(now)
        silent -= self.paused.within(now - silent, now)
        if silent > self.stall_seconds:
            return (
                f"processing stalled: the worker ran no Python code for {silent:.0f} s "
                f"(a native call that never returns; bound {self.stall_seconds:.0f} s)"
            )
        return None

    def _police(self) -> None:
        if late := self.paused.round(time.monotonic(), SUPERVISE_SECONDS):
            logger.warning(
                "the worker pool did not run for %.0f s (stopped, or starved of CPU): its "
                "workers' stall and time bounds do not count it",
                late,
            )
        for child in list(self.children):
            if child.process.pid is None or not child.process.is_alive():
                continue
            current = child.slot.current()
            reason = self._over_bound(child, current, time.monotonic())
            if reason is not None:
                self._kill(child, current.job_id if current else None, reason)

    def _kill(self, child: Child, job_id: int | None, reason: str) -> None:
        """Kill a worker over its bound: the file it was on fails, its group's others retry."""
        logger.error("killing worker %s (job %s): %s", child.worker_id, job_id, reason)
        if child.process.pid is not None:
            os.kill(child.process.pid, signal.SIGKILL)
        child.process.join(5)
        released = queue.release_worker(self.db, child.worker_id, reason, blame_job_id=job_id)
        logger.warning("worker %s killed; released %d job(s)", child.worker_id, released)
        if not child.process.is_alive():  # else `_reap` takes it once it is gone
            self.children.remove(child)
            unregister(self.db, child.worker_id)

    def _wanted(self) -> int:
        if self._stopping:
            return 0
        if self.exit_when_idle and not queue.has_active_jobs(self.db):
            return 0
        self._await_until = None  # work came: from now on an empty queue ends the pool
        return self.size

    def _awaiting_work(self) -> bool:
        return (
            self._await_until is not None
            and not self._stopping
            and time.monotonic() < self._await_until
        )

    def _tick(self) -> bool:
        """One round of supervision; True when the pool is done."""
        self._reap()
        self._police()
        wanted = self._wanted()
        while len(self.children) < wanted:
            self._spawn()
        return not self.children and wanted == 0 and not self._awaiting_work()

    def others_serve(self) -> bool:
        """Whether live workers of another pool (this host's or another's) already serve
        the queue: a pool started ahead of its work is then not needed."""
        stale_after = self.settings.heartbeat_seconds * 3
        serving = ride_out(self.settings, "worker pool", lambda: live_workers(self.db, stale_after))
        return bool(serving)

    def run(self) -> None:
        """Supervise until stopped (or, with exit_when_idle, until the queue is drained).
        While the metadata DB is unreachable, the pool waits for it with its workers."""
        leave_start_directory(self.settings.home_dir)
        # now, from the home (a no-op if `pool_main` started it): its imports overlap the
        # pool's first queries
        start_template(self._ctx)
        loader = HostLoader(self.settings) if hosts_load(self.settings) else None
        if loader is not None:
            loader.start()
        try:
            # stopped (SIGTERM): its workers are ended by `shutdown` and their jobs released;
            # waiting for them to leave by themselves, a standing pool's never did
            while not self._stopping and not ride_out(self.settings, "worker pool", self._tick):
                awaiting = self._awaiting_work() and not self.children
                time.sleep(AWAIT_POLL_SECONDS if awaiting else SUPERVISE_SECONDS)
        finally:
            self.shutdown()
            if loader is not None:
                loader.stop()  # after the workers: it loads what they finished last

    def stop(self) -> None:
        self._stopping = True

    def shutdown(self) -> None:
        for child in self.children:
            if child.process.is_alive():
                child.process.terminate()
        for child in self.children:
            child.process.join(10)
        try:
            self._reap()
        except Exception as exc:  # their leases run out instead
            if not note_transient(exc, "worker pool shutdown", self.settings):
                raise
        self.db.dispose()


def run_pool(
    settings: Settings,
    workers: int | None,
    *,
    exit_when_idle: bool,
    await_work: float | None = None,
) -> None:
    """Run a pool of `workers` (default: the setting) until stopped or, with
    `exit_when_idle`, until the queue is drained (`await_work`: see `WorkerPool`); SIGTERM
    and Ctrl-C stop it. A pool started ahead of its work leaves at once if another pool's
    workers already serve the queue."""
    settings.ensure_dirs()
    setup_logging(settings, "worker")
    check_index_url(settings)
    pool = WorkerPool(
        settings,
        workers or settings.workers,
        exit_when_idle=exit_when_idle,
        await_work=await_work,
    )
    if await_work is not None and pool.others_serve():
        logger.info("live workers already serve the queue; this pool is not needed")
        pool.db.dispose()
        return
    signal.signal(signal.SIGTERM, lambda *_: pool.stop())
    try:
        pool.run()
    except KeyboardInterrupt:
        pool.stop()

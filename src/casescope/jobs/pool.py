"""The worker pool: N worker processes under a supervisor that replaces and polices them.

The supervisor (the `casescope worker` process) never processes files itself. It
- starts `workers` processes (spawned, not forked: no inherited DB or index handles),
- replaces one that exits (recycled after N tasks or its memory limit) or dies (its running
  job is released at once, counting an attempt, instead of waiting for the lease),
- kills one whose current file runs past `file_timeout_seconds` or whose RSS passes
  `worker_hard_rss_mb`, failing that file with the reason (a parse that cannot finish within
  its bounds must not hang the batch or retry forever).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
import uuid
from dataclasses import dataclass
from multiprocessing.process import BaseProcess

from sqlalchemy import select

from casescope.config import Settings
from casescope.jobs import queue
from casescope.jobs.registry import rss_mb, unregister
from casescope.model.db import Database
from casescope.model.tables import WorkerRecord

logger = logging.getLogger(__name__)

SUPERVISE_SECONDS = 0.25


def _child_entry(settings_data: dict, worker_id: str, exit_when_idle: bool) -> None:
    # imported here, in the child: the pool process itself never needs the Sigma engine,
    # polars or the parsers, and holding them would cost ~80 MB for the pool's lifetime
    from casescope.cli.logs import setup_logging
    from casescope.jobs.worker import worker_main

    settings = Settings(**settings_data)
    setup_logging(settings, role=f"worker {worker_id}")
    worker_main(settings, worker_id, exit_when_idle)


@dataclass
class Child:
    worker_id: str
    process: BaseProcess


class WorkerPool:
    def __init__(self, settings: Settings, size: int, *, exit_when_idle: bool = False) -> None:
        self.settings = settings
        self.size = size
        self.exit_when_idle = exit_when_idle
        self.db = Database(settings)
        self.children: list[Child] = []
        self._ctx = multiprocessing.get_context("spawn")
        self._stopping = False

    def _spawn(self) -> None:
        worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        process = self._ctx.Process(
            target=_child_entry,
            args=(self.settings.model_dump(), worker_id, self.exit_when_idle),
            name=f"casescope-worker-{worker_id}",
        )
        process.start()
        self.children.append(Child(worker_id, process))
        logger.info("started worker %s (pid %s)", worker_id, process.pid)

    def _reap(self) -> None:
        for child in list(self.children):
            if child.process.is_alive():
                continue
            code = child.process.exitcode
            self.children.remove(child)
            if code != 0:
                reason = f"worker process {child.process.pid} died (exit code {code})"
                released = queue.release_worker(self.db, child.worker_id, reason)
                logger.warning("%s; released %d job(s)", reason, released)
            unregister(self.db, child.worker_id)

    def _police(self) -> None:
        with self.db.session() as session:
            records = {
                r.id: r
                for r in session.scalars(
                    select(WorkerRecord).where(
                        WorkerRecord.id.in_([c.worker_id for c in self.children])
                    )
                )
            }
        now = time.time()
        for child in self.children:
            record = records.get(child.worker_id)
            if record is None or record.current_job_id is None or child.process.pid is None:
                continue
            rss = rss_mb(child.process.pid)
            if rss > self.settings.worker_hard_rss_mb:
                self._kill(
                    child,
                    record.current_job_id,
                    f"processing exceeded the memory bound "
                    f"({rss:.0f} MB > {self.settings.worker_hard_rss_mb} MB)",
                )
            elif record.job_started_at and (
                now - record.job_started_at > self.settings.file_timeout_seconds
            ):
                self._kill(
                    child,
                    record.current_job_id,
                    f"processing exceeded the time bound "
                    f"({self.settings.file_timeout_seconds:.0f} s)",
                )

    def _kill(self, child: Child, job_id: int, reason: str) -> None:
        """Kill a worker over its bound: the file it was on fails, its group's others retry."""
        logger.error("killing worker %s: %s", child.worker_id, reason)
        if child.process.pid is not None:
            os.kill(child.process.pid, signal.SIGKILL)
        child.process.join(5)
        queue.release_worker(self.db, child.worker_id, reason, blame_job_id=job_id)

    def _wanted(self) -> int:
        if self._stopping:
            return 0
        if self.exit_when_idle and not queue.has_active_jobs(self.db):
            return 0
        return self.size

    def run(self) -> None:
        """Supervise until stopped (or, with exit_when_idle, until the queue is drained)."""
        try:
            while True:
                self._reap()
                self._police()
                wanted = self._wanted()
                while len(self.children) < wanted:
                    self._spawn()
                if not self.children and wanted == 0:
                    return
                time.sleep(SUPERVISE_SECONDS)
        finally:
            self.shutdown()

    def stop(self) -> None:
        self._stopping = True

    def shutdown(self) -> None:
        for child in self.children:
            if child.process.is_alive():
                child.process.terminate()
        for child in self.children:
            child.process.join(10)
        self._reap()
        self.db.dispose()

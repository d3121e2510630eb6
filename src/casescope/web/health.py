"""Health and metrics figures of `casescope serve`, collected by one background thread.

`/health` and `/metrics` need no login (or only an allow-listed address), so they must cost
nothing that others wait for. No request collects figures: each reads the latest snapshot,
and one asked for when it is older than `REFRESH_SECONDS` is made by the refresher thread,
at most once per `REFRESH_SECONDS`. The refresher alone takes the index lock (for the event
count, briefly); requests wait for its snapshot asynchronously (no worker thread held), at
most `WAIT_SECONDS`, and then take what there is. The disk use of the home (a walk of the
index directory) is measured at most every `HOME_USAGE_SECONDS`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import anyio
from sqlalchemy.exc import SQLAlchemyError

from casescope.services.deployment import Deployment, check_deployment
from casescope.services.system import (
    ComponentStatus,
    SystemReport,
    collect_system,
    home_usage,
    prometheus_text,
)
from casescope.web.state import WebState

logger = logging.getLogger(__name__)

#: A snapshot this young is served as it is; an older one is refreshed, at most this often.
REFRESH_SECONDS = 1.0
#: How long a request waits for a fresh snapshot before it takes the latest one.
WAIT_SECONDS = 2.0
#: How often a waiting request looks for the new snapshot.
POLL_SECONDS = 0.05
#: A snapshot this old means the refresher is stuck (e.g. the index never frees): degraded.
STALE_SECONDS = 30.0
#: The home's disk use changes slowly and costs a directory walk: measured this often.
HOME_USAGE_SECONDS = 30.0


@dataclass(frozen=True)
class Snapshot:
    #: `time.monotonic()` when the collection started: the figures are no older.
    taken_at: float
    report: SystemReport
    metrics: str
    #: The mode in use and a check of each part (services/deployment.py).
    deployment: Deployment

    @property
    def age(self) -> float:
        return time.monotonic() - self.taken_at

    @property
    def healthy(self) -> bool:
        return self.report.ok and self.deployment.ok and self.age <= STALE_SECONDS


class HealthMonitor:
    """The cached figures and the thread that refreshes them on demand."""

    def __init__(self, state: WebState) -> None:
        self._state = state
        self._snapshot: Snapshot | None = None
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="health-refresher", daemon=True)
        self._home_used: tuple[float, int] | None = None
        #: Snapshots made so far (tests and benchmarks read it).
        self.refreshes = 0

    def start(self) -> None:
        self._wanted.set()  # the first snapshot at once
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wanted.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _loop(self) -> None:
        while True:
            self._wanted.wait()
            if self._stop.is_set():
                return
            self._wanted.clear()
            try:
                self._snapshot = self._collect()
                self.refreshes += 1
            except Exception:  # isolation boundary: health must outlive one bad collection
                logger.exception("collecting health figures failed")
            if self._stop.wait(REFRESH_SECONDS):
                return

    def _count_events(self) -> int:
        with self._state.index.use() as index:
            return index.count()

    def _ddl_version(self) -> int | None:
        with self._state.index.use() as index:
            return index.ddl_version()

    def _home_usage(self) -> int:
        now = time.monotonic()
        if self._home_used is None or now - self._home_used[0] > HOME_USAGE_SECONDS:
            self._home_used = (now, home_usage(self._state.db, self._state.settings))
        return self._home_used[1]

    def _collect(self) -> Snapshot:
        started = time.monotonic()
        state = self._state
        report = collect_system(state.db, state.settings, self._count_events, self._home_usage)
        indexed = report.events_indexed if report.store is ComponentStatus.OK else None
        # without the database, the last text (the report says why: db error or unreachable)
        metrics = self._snapshot.metrics if self._snapshot else ""
        if report.db is ComponentStatus.OK:
            try:
                metrics = prometheus_text(state.db, indexed, report.hosts)
            except SQLAlchemyError as exc:
                logger.warning("health: metrics not collected: %s", exc)
        deployment = check_deployment(state.settings, state.db, self._ddl_version)
        return Snapshot(started, report, metrics, deployment)

    async def snapshot(self) -> Snapshot | None:
        """The latest figures, fresh if the refresher makes them in time (None: none yet)."""
        asked = time.monotonic()
        current = self._snapshot
        if current is not None and asked - current.taken_at <= REFRESH_SECONDS:
            return current
        self._wanted.set()
        while time.monotonic() - asked < WAIT_SECONDS:
            await anyio.sleep(POLL_SECONDS)
            current = self._snapshot
            if current is not None and current.taken_at >= asked - REFRESH_SECONDS:
                return current
        return self._snapshot

"""What the web process holds while it runs: settings, the metadata DB, and the event index.

`casescope serve` is the index owner (DESIGN decision 4): it takes the owner lock at start,
loads ready segments in a background thread, and starts a worker pool when work is queued.
In team mode (a ClickHouse server: docs/deploy.md) it takes no lock and its loads claim the
files they load (store/load_claims.py), beside other processes that search and load.
Queries go through `IndexHandle.use()`, several at once on reader connections; loads and
hunts that load first go through `IndexHandle.write()`, alone (store/shared_index.py).
Every query is bounded in time (store/query_bounds.py), and exports are cut into keyset
chunks, so a writer waits at most one chunk. While the metadata DB is unreachable the
background loops wait for it (model/outage.py `Backoff`): one log line for the outage.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from casescope.config import Settings
from casescope.jobs.launcher import PoolKeeper, PoolStartError
from casescope.model.db import Database
from casescope.model.outage import Backoff
from casescope.store.load_queue import load_waiting
from casescope.store.loader import load_pending
from casescope.store.owner import open_index
from casescope.store.shared_index import SharedIndex
from casescope.workqueue.queue import has_active_jobs

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

logger = logging.getLogger(__name__)

LOAD_INTERVAL_SECONDS = 1.0
POOL_WATCH_SECONDS = 1.0


class IndexHandle:
    """The owned index shared by the request threads, plus the loader thread."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self._settings = settings
        self._db = db
        self._stack = contextlib.ExitStack()
        self._index: EventIndex = self._stack.enter_context(
            open_index(settings, role="casescope serve")
        )
        self._shared = SharedIndex(self._index, settings.index_readers)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._load_loop, name="index-loader", daemon=True)
        self.loads = 0

    def start(self) -> None:
        self._thread.start()

    @contextlib.contextmanager
    def use(self) -> Iterator[EventIndex]:
        """A connection for queries, beside other users' queries."""
        with self._shared.read() as index:
            yield index

    @contextlib.contextmanager
    def write(self) -> Iterator[EventIndex]:
        """The owner's connection, alone: for whatever loads into the index."""
        with self._shared.write() as index:
            yield index

    def load_now(self) -> int:
        """Load the segments ready now; returns the files loaded. The index is taken alone
        only when there is something to load: every second, it would make each search
        wait for the queries (export chunks) running before it."""
        if not load_waiting(self._db):
            return 0
        with self._shared.write() as index:
            report = load_pending(self._db, index, self._settings)
        self.loads += report.files
        return report.files

    def _load_loop(self) -> None:
        pace = Backoff(self._settings, "index loader", LOAD_INTERVAL_SECONDS)
        while not self._stop.wait(pace.wait):
            try:
                pace.run(self.load_now)
            except Exception:  # isolation boundary: the loader must outlive one bad batch
                logger.exception("loading ready segments into the index failed")

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self._shared.close()
        self._stack.close()


@dataclass
class WebState:
    settings: Settings
    db: Database
    index: IndexHandle
    secret: str
    #: The one-time setup token this process printed at start while no user existed (every
    #: process accepts it: services/auth.py, `setup_tokens`).
    setup_token: str | None = None
    started_at: float = field(default_factory=time.time)
    _keeper: PoolKeeper = field(init=False)
    _pool_lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._keeper = PoolKeeper(self.settings, self.db)
        watcher = threading.Thread(target=self._watch_pool, name="pool-watcher", daemon=True)
        watcher.start()

    def kick_workers(self) -> None:
        """Start a worker pool unless one is alive (it exits by itself when idle); a user's
        action gives a pool that kept dying at start another chance."""
        with self._pool_lock:
            self._keeper.early_deaths = 0
            self._keeper.ensure()

    def _watch_pool(self) -> None:
        """Our pool died: release its jobs at once, start another while work is queued (a pool
        that keeps dying at start is given up on: recorded for `status` and the System page)."""
        pace = Backoff(self.settings, "worker pool watcher", POOL_WATCH_SECONDS)
        while not self._stop.wait(pace.wait):
            with self._pool_lock:
                try:
                    pace.run(lambda: self._keeper.watch(work_left=has_active_jobs(self.db)))
                except PoolStartError as exc:
                    logger.error("%s", exc)
                except Exception:  # isolation boundary: the watcher must outlive one bad check
                    logger.exception("watching the worker pool failed")

    def close(self) -> None:
        self._stop.set()
        self.index.close()
        self._keeper.stop(timeout=5)
        self.db.dispose()

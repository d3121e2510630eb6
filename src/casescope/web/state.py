"""What the web process holds while it runs: settings, the metadata DB, and the event index.

`casescope serve` is the index owner (DESIGN decision 4): it takes the owner lock at start,
loads ready segments in a background thread, and starts a worker pool when work is queued.
chDB is one in-process session, so every index call goes through `IndexHandle.use()`, one
at a time; long work (exports) is cut into short keyset chunks so nobody waits long.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from casescope.config import Settings
from casescope.jobs.launcher import PoolKeeper, PoolStartError
from casescope.model.db import Database
from casescope.store.index import ChdbIndex
from casescope.store.loader import load_pending
from casescope.store.owner import open_index
from casescope.workqueue.queue import has_active_jobs

logger = logging.getLogger(__name__)

LOAD_INTERVAL_SECONDS = 1.0
POOL_WATCH_SECONDS = 1.0


class IndexHandle:
    """The owned index, serialised behind a lock, plus the loader thread."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self._settings = settings
        self._db = db
        self._stack = contextlib.ExitStack()
        self._index: ChdbIndex = self._stack.enter_context(
            open_index(settings, role="casescope serve")
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._load_loop, name="index-loader", daemon=True)
        self.loads = 0

    def start(self) -> None:
        self._thread.start()

    @contextlib.contextmanager
    def use(self) -> Iterator[ChdbIndex]:
        with self._lock:
            yield self._index

    def load_now(self) -> int:
        """Load the segments ready now; returns the files loaded."""
        with self._lock:
            report = load_pending(self._db, self._index, self._settings)
        self.loads += report.files
        return report.files

    def _load_loop(self) -> None:
        while not self._stop.wait(LOAD_INTERVAL_SECONDS):
            try:
                self.load_now()
            except Exception:  # isolation boundary: the loader must outlive one bad batch
                logger.exception("loading ready segments into the index failed")

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        with self._lock:
            self._stack.close()


@dataclass
class WebState:
    settings: Settings
    db: Database
    index: IndexHandle
    secret: str
    #: The one-time setup token (printed at first start) while no user exists.
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
        while not self._stop.wait(POOL_WATCH_SECONDS):
            with self._pool_lock:
                try:
                    self._keeper.watch(work_left=has_active_jobs(self.db))
                except PoolStartError as exc:
                    logger.error("%s", exc)
                except Exception:  # isolation boundary: the watcher must outlive one bad check
                    logger.exception("watching the worker pool failed")

    def close(self) -> None:
        self._stop.set()
        self.index.close()
        self._keeper.stop(timeout=5)
        self.db.dispose()

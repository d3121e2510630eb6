"""A worker host's loader: in team mode each `casescope worker` pool loads beside its workers.

On a ClickHouse server reached over the network (CASESCOPE_INDEX_URL `clickhouse://` or
`https://`) any process may load, and loaders claim files one round at a time
(store/load_claims.py). So each worker host's pool supervisor runs this thread: every
LOAD_INTERVAL_SECONDS it loads the files that wait (those its workers finished and any
others no live loader holds), and once more when the pool stops, so a pool run with
`--exit-when-idle` leaves nothing it could load. Loading then grows with the hosts instead of
waiting for one process (docs/decisions.md, "Team mode: exactly once under per-file load
claims"). `serve` and `ingest` load too, under the same claims.

With the embedded index (the owner loads) or clickhouse-connect's in-process chDB interface
(`chdb://`, one process per data directory: tests), the host does not load.
"""

from __future__ import annotations

import logging
import threading
from contextlib import ExitStack
from typing import TYPE_CHECKING

from casescope.config import Settings
from casescope.model.db import Database
from casescope.store.index_url import IndexTransport, parse_index_url
from casescope.store.load_queue import load_waiting

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

logger = logging.getLogger(__name__)

LOAD_INTERVAL_SECONDS = 1.0
#: The transports a worker host loads over: a ClickHouse server several processes reach.
HOST_LOADED = frozenset({IndexTransport.HTTP, IndexTransport.HTTPS})


def hosts_load(settings: Settings) -> bool:
    """Whether worker hosts load into the index CASESCOPE_INDEX_URL names."""
    return parse_index_url(settings.index_url).transport in HOST_LOADED


class HostLoader:
    """The loader thread of one pool supervisor (`start`, then `stop` at the pool's end)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings)  # its own: the supervisor's is disposed before the last load
        self.files = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="host-loader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Load once more what waits, then end the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.db.dispose()

    def _run(self) -> None:
        # the loader brings the Arrow stack and the server's client: only a loading pool
        # imports them
        from casescope.store.owner import open_index

        with ExitStack() as stack:
            try:
                index = stack.enter_context(open_index(self.settings, role="worker host"))
            except Exception:  # isolation boundary: the workers go on; others load
                logger.exception("the worker host cannot open the event index: not loading")
                return
            while not self._stop.wait(LOAD_INTERVAL_SECONDS):
                self._load(index)
            self._load(index)

    def _load(self, index: EventIndex) -> None:
        from casescope.store.loader import load_pending

        try:
            if load_waiting(self.db):
                self.files += load_pending(self.db, index, self.settings).files
        except Exception:  # isolation boundary: one failed round must not end the loader
            logger.exception("loading ready segments into the index failed")

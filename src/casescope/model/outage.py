"""Riding out an outage of the metadata DB (a PostgreSQL server restarted or unreachable).

The worker loop, the pool supervisor and the processes that wait on the queue run their DB
operations through `ride_out`: a dropped connection is retried with capped exponential
backoff for up to `db_outage_seconds`, then `DatabaseUnavailableError`. The engine's
`pool_pre_ping` replaces the pooled connections the restart killed.

An outage is logged once per wave and process (one line naming the database, no
traceback), and its end once; the threads of a process share the wave.

SQLite's OperationalError is never an outage: there it means a locked or full database,
which waiting cannot be relied on to fix (`disk_full_message` reports the latter).

A transaction the server rolled back as a conflict (SQLSTATE class 40: a deadlock, a
serialization failure) is not an outage either, though the driver raises it as the same
OperationalError: the server is up and the transaction can run again at once. Both are
*transient*: retried, and never a file's failure; only an outage is logged as one.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from casescope.config import Settings
from casescope.errors import DatabaseUnavailableError

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: The first wait after a failed attempt; each wait doubles up to `MAX_DELAY_SECONDS`.
FIRST_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 10.0
#: The SQLAlchemy errors a lost or refused connection raises (and a conflict: see above).
DISCONNECTS = (OperationalError, InterfaceError)
#: SQLSTATE class "transaction rollback": 40001 serialization failure, 40P01 deadlock.
CONFLICT_CLASS = "40"


def _server_errors(exc: BaseException) -> Iterator[DBAPIError]:
    """`exc` and the errors it was raised from that a database server's driver raised
    (a failure path that writes to the DB re-raises its own error)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DISCONNECTS) and not isinstance(seen.orig, sqlite3.Error):
            yield seen
        seen = seen.__cause__ or seen.__context__


def _rolled_back(error: DBAPIError) -> bool:
    """Whether the server rolled the transaction back as a conflict (SQLSTATE class 40)."""
    return str(getattr(error.orig, "sqlstate", "") or "").startswith(CONFLICT_CLASS)


def is_conflict(exc: BaseException) -> bool:
    """Whether `exc` is a transaction the server rolled back as a conflict (a deadlock, a
    serialization failure): running it again is the remedy."""
    return any(_rolled_back(error) for error in _server_errors(exc))


def is_outage(exc: BaseException) -> bool:
    """Whether `exc`, or an error it was raised from, is a lost or refused connection to a
    database server."""
    return any(not _rolled_back(error) for error in _server_errors(exc))


def is_transient(exc: BaseException) -> bool:
    """An outage or a conflict: not the fault of the work at hand, which is retried."""
    return any(True for _ in _server_errors(exc))


class _Wave:
    """The outage this process is in, if any: logged when it starts and when it ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = None

    def begin(self, exc: BaseException, what: str, settings: Settings, *, gives_up: bool) -> None:
        with self._lock:
            if self._since is not None:
                return
            self._since = time.monotonic()
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        if gives_up:
            until = f"for up to {settings.db_outage_seconds:.0f} s (CASESCOPE_DB_OUTAGE_SECONDS)"
        else:
            until = "until it answers"
        logger.error("metadata database unreachable (%s: %s); retrying %s", what, reason, until)

    def end(self) -> None:
        if self._since is None:
            return
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            logger.warning(
                "metadata database reachable again after %.1f s", time.monotonic() - since
            )


_wave = _Wave()


def note_transient(
    exc: BaseException, what: str, settings: Settings, *, gives_up: bool = True
) -> bool:
    """Whether `exc` is transient (an outage or a conflict), for a caller that retries on
    its own schedule, such as the heartbeat. An outage is logged as part of its wave; a
    conflict as one line of its own. `gives_up`: the process stops after
    `db_outage_seconds` of outage (a worker); else it waits as long as it takes (`serve`)."""
    if is_conflict(exc):
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        logger.warning("transaction conflict (%s: %s); running it again", what, reason)
        return True
    if not is_outage(exc):
        return False
    _wave.begin(exc, what, settings, gives_up=gives_up)
    return True


def note_reachable() -> None:
    """The database answered: end the current outage wave, if any."""
    _wave.end()


def ride_out(settings: Settings, what: str, operation: Callable[[], T]) -> T:
    """`operation()` (one whole transaction: it is run again after a failure), retried
    after a conflict and while the database is unreachable, for up to
    `settings.db_outage_seconds`."""
    started = time.monotonic()
    delay = FIRST_DELAY_SECONDS
    while True:
        try:
            result = operation()
        except Exception as exc:  # an outage may surface as the error of a failure path
            if not note_transient(exc, what, settings):
                raise
            waited = time.monotonic() - started
            if waited >= settings.db_outage_seconds:
                raise DatabaseUnavailableError(
                    f"the metadata database (CASESCOPE_DATABASE_URL) was unreachable for "
                    f"{waited:.0f} s ({what}), longer than CASESCOPE_DB_OUTAGE_SECONDS"
                ) from exc
            time.sleep(min(delay, settings.db_outage_seconds - waited))
            delay = min(delay * 2, MAX_DELAY_SECONDS)
            continue
        note_reachable()
        return result


class Backoff:
    """The pace of a background loop that needs the database (`serve`'s loader, pool watcher):
    its interval while the database answers; during an outage, one log line for the wave
    and waits doubling from `FIRST_DELAY_SECONDS` up to `MAX_DELAY_SECONDS`, for as long
    as the outage lasts."""

    def __init__(self, settings: Settings, what: str, interval: float) -> None:
        self.settings = settings
        self.what = what
        self.interval = interval
        self.wait = interval

    def run(self, operation: Callable[[], object]) -> bool:
        """One round: whether the database answered. Errors other than an outage raise."""
        try:
            operation()
        except Exception as exc:
            if not note_transient(exc, self.what, self.settings, gives_up=False):
                raise
            self.wait = min(max(self.wait * 2, FIRST_DELAY_SECONDS), MAX_DELAY_SECONDS)
            return False
        note_reachable()
        self.wait = self.interval
        return True

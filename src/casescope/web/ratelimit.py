"""Login rate limit: exponential back-off on failed logins, in bounded tables.

Three keys count failures: the (user name, client) pair, the user name from any client, and
the client with any user name. Each has a number of free failures, after which the next
attempt must wait 1 s, 2 s, 4 s ... up to that key's cap, answered `429` with `Retry-After`.
The caps differ on purpose: a client guessing one user's password (pair) or spraying names
(client) is slowed to one attempt a minute, while the user name alone waits at most a few
seconds, so a flood against a user from one client cannot lock that user out elsewhere: it
only delays the real login by those seconds. Refused attempts count nothing and store
nothing; a key is forgotten `FORGET_SECONDS` after its latest failure, and each table keeps
at most `MAX_KEYS` keys (least recently failed dropped first), so no client can grow memory.

Password checks run at most `VERIFY_AT_ONCE` at a time: one argon2 verification takes 64 MiB
(argon2-cffi's default memory cost) and tens of milliseconds of a core, so parallel login
attempts (within their free failures, or from many addresses) would otherwise grow the index
owner by 64 MiB each (bench/flood.py). An attempt that finds no free slot within
`VERIFY_WAIT_SECONDS` is answered 503 with `Retry-After`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

#: A key without a new failure for this long starts afresh.
FORGET_SECONDS = 900.0
#: Keys per table; a flood of new names or addresses evicts the oldest.
MAX_KEYS = 10_000
#: The longest wait of a (user, client) pair and of a client: about one attempt a minute.
CLIENT_MAX_DELAY = 60.0
#: The longest wait of a user name across all clients: short, or it would be a lockout.
USER_MAX_DELAY = 5.0
#: A client may fail this many times the per-user number, over all names, before back-off.
CLIENT_FREE_FACTOR = 4
#: Password verifications at once, and how long an attempt waits for a turn (a worker
#: thread of the server waits with it, so briefly).
VERIFY_AT_ONCE = 2
VERIFY_WAIT_SECONDS = 1.0


class LoginBusy(Exception):
    """No password-check slot came free in time."""


@dataclass
class _Entry:
    failures: int
    last: float


class BackoffTable:
    """Failures per key with exponential back-off after `free` of them, capped at
    `max_delay`; at most `max_keys` keys, each forgotten `FORGET_SECONDS` after its last."""

    def __init__(self, free: int, max_delay: float, max_keys: int = MAX_KEYS) -> None:
        self.free, self.max_delay, self.max_keys = free, max_delay, max_keys
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self, now: float) -> None:
        # Entries are kept in the order of their latest failure: the stale ones are in front.
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if now - oldest.last <= FORGET_SECONDS:
                break
            self._entries.popitem(last=False)

    def wait(self, key: str, now: float) -> float:
        """Seconds until `key` may try again (0: now)."""
        entry = self._entries.get(key)
        if entry is None or entry.failures < self.free or now - entry.last > FORGET_SECONDS:
            return 0.0
        delay = min(2.0 ** (entry.failures - self.free), self.max_delay)
        return max(0.0, entry.last + delay - now)

    def fail(self, key: str, now: float) -> None:
        self._expire(now)
        entry = self._entries.pop(key, None) or _Entry(0, now)
        entry.failures, entry.last = entry.failures + 1, now
        self._entries[key] = entry
        while len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)

    def clear(self, key: str) -> None:
        self._entries.pop(key, None)


class LoginLimiter:
    """The three back-off tables of the login routes (see the module docstring)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._pairs = BackoffTable(per_minute, CLIENT_MAX_DELAY)
        self._users = BackoffTable(per_minute, USER_MAX_DELAY)
        self._clients = BackoffTable(per_minute * CLIENT_FREE_FACTOR, CLIENT_MAX_DELAY)
        self._lock = threading.Lock()
        self._verifying = threading.BoundedSemaphore(VERIFY_AT_ONCE)

    @contextmanager
    def verifying(self) -> Iterator[None]:
        """A turn to check a password; `LoginBusy` if none comes free in time."""
        if not self._verifying.acquire(timeout=VERIFY_WAIT_SECONDS):
            raise LoginBusy
        try:
            yield
        finally:
            self._verifying.release()

    def __len__(self) -> int:
        """Keys held, over the three tables."""
        return len(self._pairs) + len(self._users) + len(self._clients)

    @staticmethod
    def _keys(username: str, client: str) -> tuple[str, str, str]:
        user = username.lower()
        return f"{user}\x00{client}", user, client

    def retry_after(self, username: str, client: str) -> float:
        """Seconds this attempt must wait (0: it may be checked now). Stores nothing."""
        pair, user, client = self._keys(username, client)
        with self._lock:
            now = self._clock()
            return max(
                self._pairs.wait(pair, now),
                self._users.wait(user, now),
                self._clients.wait(client, now),
            )

    def failed(self, username: str, client: str) -> None:
        pair, user, client = self._keys(username, client)
        with self._lock:
            now = self._clock()
            self._pairs.fail(pair, now)
            self._users.fail(user, now)
            self._clients.fail(client, now)

    def succeeded(self, username: str, client: str) -> None:
        pair, user, _client = self._keys(username, client)
        with self._lock:
            self._pairs.clear(pair)
            self._users.clear(user)

"""Login rate limit: exponential back-off on failed logins, counted in the metadata DB.

Three keys count failures: the (user name, client) pair, the user name from any client, and
the client with any user name. Each has a number of free failures, after which the next
attempt must wait 1 s, 2 s, 4 s ... up to that key's cap, answered `429` with `Retry-After`.
The caps differ on purpose: a client guessing one user's password (pair) or spraying names
(client) is slowed to one attempt a minute, while the user name alone waits at most a few
seconds, so a flood against a user from one client cannot lock that user out elsewhere: it
only delays the real login by those seconds. Refused attempts count nothing and store
nothing; a key is forgotten `FORGET_SECONDS` after its latest failure, and each kind keeps
at most `MAX_KEYS` keys (least recently failed dropped first), so no client can grow the
table.

The counts are rows of `login_failures` (model/users.py), keyed by a SHA-256 of the key, so
that every `serve` process behind a load balancer sees the same attempts (docs/deploy.md);
times are wall-clock seconds, as those processes may run on different hosts.

Password checks run at most `VERIFY_AT_ONCE` at a time per process: one argon2 verification
takes 64 MiB (argon2-cffi's default memory cost) and tens of milliseconds of a core, so
parallel login attempts (within their free failures, or from many addresses) would otherwise
grow the process by 64 MiB each (bench/flood.py). That bound protects one process's memory,
so it stays in the process. An attempt that finds no free slot within
`VERIFY_WAIT_SECONDS` is answered 503 with `Retry-After`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from casescope.model.db import Database
from casescope.model.users import LoginFailure, LoginKey

#: A key without a new failure for this long starts afresh.
FORGET_SECONDS = 900.0
#: Keys per kind; a flood of new names or addresses evicts the oldest.
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


@dataclass(frozen=True)
class Rule:
    """The back-off of one kind of key: `free` failures, then 1 s, 2 s, 4 s ... `max_delay`."""

    kind: LoginKey
    free: int
    max_delay: float

    def wait(self, failures: int, last: float, now: float) -> float:
        """Seconds until a key with `failures`, the latest at `last`, may try again."""
        if failures < self.free or now - last > FORGET_SECONDS:
            return 0.0
        delay = min(2.0 ** (failures - self.free), self.max_delay)
        return max(0.0, last + delay - now)


def key_hash(text: str) -> str:
    # surrogatepass: a user name from JSON may hold a lone surrogate
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _upsert(session: Session) -> PostgresInsert | SqliteInsert:
    """An insert of the session's dialect (both have `on_conflict_do_update`)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql_insert(LoginFailure.__table__)
    return sqlite_insert(LoginFailure.__table__)


class LoginLimiter:
    """The three back-off rules of the login routes over `login_failures` (see the module
    docstring); `clock` is wall-clock seconds."""

    def __init__(
        self,
        db: Database,
        per_minute: int,
        clock: Callable[[], float] = time.time,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.db, self.per_minute, self.max_keys = db, per_minute, max_keys
        self._clock = clock
        self._rules = (
            Rule(LoginKey.PAIR, per_minute, CLIENT_MAX_DELAY),
            Rule(LoginKey.USER, per_minute, USER_MAX_DELAY),
            Rule(LoginKey.CLIENT, per_minute * CLIENT_FREE_FACTOR, CLIENT_MAX_DELAY),
        )
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
        """Keys held, over the three kinds."""
        with self.db.read() as session:
            return session.scalar(select(func.count()).select_from(LoginFailure)) or 0

    @staticmethod
    def _keys(username: str, client: str) -> dict[LoginKey, str]:
        user = username.lower()
        return {
            LoginKey.PAIR: key_hash(f"{user}\x00{client}"),
            LoginKey.USER: key_hash(user),
            LoginKey.CLIENT: key_hash(client),
        }

    def retry_after(self, username: str, client: str) -> float:
        """Seconds this attempt must wait (0: it may be checked now). Stores nothing."""
        keys = self._keys(username, client)
        wanted = or_(
            *(and_(LoginFailure.kind == k, LoginFailure.key_hash == h) for k, h in keys.items())
        )
        with self.db.read() as session:
            rows = session.execute(
                select(LoginFailure.kind, LoginFailure.failures, LoginFailure.last_at).where(wanted)
            ).all()
        now = self._clock()
        held = {kind: (failures, last) for kind, failures, last in rows}
        return max(
            (rule.wait(*held[rule.kind], now) for rule in self._rules if rule.kind in held),
            default=0.0,
        )

    def failed(self, username: str, client: str) -> None:
        """Count a failure on each key: one atomic upsert per key, so processes failing the
        same key at once each add theirs."""
        now = self._clock()
        table = LoginFailure.__table__
        with self.db.session() as session:
            session.execute(delete(LoginFailure).where(LoginFailure.last_at < now - FORGET_SECONDS))
            for kind, hashed in self._keys(username, client).items():
                row = {"kind": kind, "key_hash": hashed, "failures": 1, "last_at": now}
                upsert = _upsert(session).values(row)
                session.execute(
                    upsert.on_conflict_do_update(
                        index_elements=["kind", "key_hash"],
                        set_={"failures": table.c.failures + 1, "last_at": now},
                    )
                )
                self._trim(session, kind)

    def _trim(self, session: Session, kind: LoginKey) -> None:
        """Drop the least recently failed keys of `kind` beyond `max_keys`."""
        held = session.scalar(select(func.count()).where(LoginFailure.kind == kind)) or 0
        if held <= self.max_keys:
            return
        oldest = (
            select(LoginFailure.id)
            .where(LoginFailure.kind == kind)
            .order_by(LoginFailure.last_at, LoginFailure.id)
            .limit(held - self.max_keys)
        )
        session.execute(delete(LoginFailure).where(LoginFailure.id.in_(oldest)))

    def succeeded(self, username: str, client: str) -> None:
        keys = self._keys(username, client)
        with self.db.session() as session:
            for kind in (LoginKey.PAIR, LoginKey.USER):
                session.execute(
                    delete(LoginFailure).where(
                        LoginFailure.kind == kind, LoginFailure.key_hash == keys[kind]
                    )
                )

"""Load claims: which process loads which file into an index several processes load into.

With the embedded index the owner lock (store/owner.py) makes the owner the only loader.
A ClickHouse server has no owner: every process opens it, searches it, and may load into it.
The loader's exactly-once rule (delete a file's rows, insert them, mark the file loaded:
store/loader.py) holds while no other loader inserts the same file meanwhile, so a loader
first claims the files it loads, a few hundred at a time, and skips those another live
process holds (docs/decisions.md, "Team mode: exactly once under per-file load claims").

A claim lives where every process of the team sees it and where a dead holder loses it at
once, and only then: a PostgreSQL session-level advisory lock in the two-key form
(CLAIM_CLASS, file id) on a connection held for the load, released when the holder's
connection closes (its process killed included) and kept while the holder lives, stopped
or not. With SQLite (one host) the whole home is claimed at once, by an `flock` on
`<home>/load.lock` (released by the kernel when the process dies).

A dead claimant's INSERT can outlive it at the server. So the claims of one round carry a
query-id prefix of their own (`ClaimRound.prefix`), every loading INSERT of the round
carries it (`load_query_id`), and it is written on the claimed files' rows
(`EvidenceFile.load_claimant`) until they are marked loaded. A new claimant of a file first
stops the INSERTs of the prefix recorded there (`EventIndex.fence_loads`): that round has
ended (its holder released the file, or died), so no live loader's query carries it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Connection, select, text, update
from sqlalchemy.exc import DBAPIError

from casescope.model.db import IN_CHUNK, Database
from casescope.model.tables import EvidenceFile

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

logger = logging.getLogger(__name__)

#: The first key of every claim's advisory lock ("cslc"); the second is the file's id.
CLAIM_CLASS = 0x63_73_6C_63
LOCK_FILE = "load.lock"
#: The query id of every loading INSERT starts so; a claim round's adds its own token.
LOAD_QUERY_PREFIX = "casescope-load-"
#: A claim round's prefix, as recorded on the files it claims (checked before it is put in
#: a KILL QUERY: the column is data, not code).
ROUND_PREFIX = re.compile(rf"^{LOAD_QUERY_PREFIX}[0-9a-f]{{32}}-$")

_round_prefix: ContextVar[str] = ContextVar("load_round_prefix", default=LOAD_QUERY_PREFIX)
_FILES = EvidenceFile.__table__


def load_query_id() -> str:
    """A query id for one loading INSERT: the current claim round's prefix and a token."""
    return f"{_round_prefix.get()}{uuid.uuid4().hex}"


class ClaimLocks(Protocol):
    def try_lock(self, file_ids: Sequence[int]) -> set[int]: ...
    def unlock(self, file_ids: Sequence[int]) -> None: ...


class PostgresLocks:
    """Advisory locks (CLAIM_CLASS, file id) on one connection held for the load."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def try_lock(self, file_ids: Sequence[int]) -> set[int]:
        if not file_ids:
            return set()
        rows = self._connection.execute(
            text(
                "SELECT f FROM unnest(CAST(:ids AS integer[])) AS t(f) "
                "WHERE pg_try_advisory_lock(:k, f)"
            ),
            {"ids": list(file_ids), "k": CLAIM_CLASS},
        )
        return {int(row[0]) for row in rows}

    def unlock(self, file_ids: Sequence[int]) -> None:
        if file_ids:
            self._connection.execute(
                text(
                    "SELECT pg_advisory_unlock(:k, f) FROM unnest(CAST(:ids AS integer[])) AS t(f)"
                ),
                {"ids": list(file_ids), "k": CLAIM_CLASS},
            )


class HomeLease:
    """One host (SQLite): every file is claimed by the holder of the home's `flock`."""

    def __init__(self, held: bool) -> None:
        self.held = held

    def try_lock(self, file_ids: Sequence[int]) -> set[int]:
        return set(file_ids) if self.held else set()

    def unlock(self, file_ids: Sequence[int]) -> None:
        """Nothing to do: the lease ends with the block (`load_claims`)."""


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), IN_CHUNK):
        yield list(ids[start : start + IN_CHUNK])


class ClaimRound:
    """The files one round of a loader claimed, and the query-id prefix of its INSERTs."""

    def __init__(self, db: Database, locks: ClaimLocks, index: EventIndex) -> None:
        self.db = db
        self.index = index
        self.prefix = f"{LOAD_QUERY_PREFIX}{uuid.uuid4().hex}-"
        self.held: set[int] = set()
        self._locks = locks

    def take(self, file_ids: Sequence[int]) -> set[int]:
        """Of `file_ids`, those this round holds: it claims those no live process holds,
        stops the INSERTs of their previous claimants and records itself on them."""
        wanted = sorted(set(file_ids) - self.held)
        got = self._locks.try_lock(wanted)
        if got:
            self._fence_and_record(sorted(got))
            self.held |= got
        if len(got) < len(wanted):
            logger.debug("%d files are claimed by other loaders", len(wanted) - len(got))
        return self.held & set(file_ids)

    def _fence_and_record(self, file_ids: list[int]) -> None:
        """Fence first, record after: a claimant that dies in between leaves the old
        prefix on the rows, for the next claimant to fence again."""
        previous: set[str] = set()
        with self.db.read() as session:
            for chunk in _chunks(file_ids):
                previous.update(
                    session.scalars(
                        select(EvidenceFile.load_claimant)
                        .where(EvidenceFile.id.in_(chunk), EvidenceFile.load_claimant.is_not(None))
                        .distinct()
                    )
                )
        stale = sorted(p for p in previous if ROUND_PREFIX.match(p))
        if stale:
            logger.info("stopping the loads of %d earlier claimants", len(stale))
            self.index.fence_loads(stale)
        with self.db.session() as session:
            for chunk in _chunks(file_ids):
                session.execute(
                    update(_FILES).where(_FILES.c.id.in_(chunk)).values(load_claimant=self.prefix)
                )


class LoadClaims:
    """A loader's claims, held on `locks` for the block of `load_claims`."""

    def __init__(self, db: Database, locks: ClaimLocks) -> None:
        self.db = db
        self.locks = locks

    @contextmanager
    def round(self, index: EventIndex) -> Iterator[ClaimRound]:
        """A round of claims: its INSERTs carry its prefix; its files are released at the
        end, once none of its queries runs any more."""
        claims = ClaimRound(self.db, self.locks, index)
        token = _round_prefix.set(claims.prefix)
        try:
            yield claims
        finally:
            _round_prefix.reset(token)
            self.locks.unlock(sorted(claims.held))


@contextmanager
def _postgres_claims(db: Database) -> Iterator[LoadClaims]:
    with db.engine.connect() as raw:
        connection = raw.execution_options(isolation_level="AUTOCOMMIT")
        try:
            yield LoadClaims(db, PostgresLocks(connection))
        finally:
            try:  # the connection goes back to the pool: none of its locks may go with it
                connection.execute(text("SELECT pg_advisory_unlock_all()"))
            except DBAPIError:
                raw.invalidate()  # a broken session: closing it releases every lock


@contextmanager
def _home_claims(db: Database) -> Iterator[LoadClaims]:
    path = db.settings.home_dir / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = True
        except BlockingIOError:
            held = False
            logger.debug("another process holds the home's load lease: not loading now")
        yield LoadClaims(db, HomeLease(held))
    finally:
        os.close(fd)  # releases the flock


@contextmanager
def load_claims(db: Database) -> Iterator[LoadClaims]:
    """This process's claims for the block: per file on PostgreSQL, the whole home with
    SQLite. Released at the end of the block, or when the process dies."""
    claims = _postgres_claims if db.engine.dialect.name == "postgresql" else _home_claims
    with claims(db) as held:
        yield held

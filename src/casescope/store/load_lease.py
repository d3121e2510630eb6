"""The team's load lease: one process at a time moves ready segments into a shared index.

With the embedded index the owner lock (store/owner.py) makes the owner the only loader.
A ClickHouse server has no owner: every process opens it, searches it, and may load into it.
Loads still take turns, under this lease, because the loader's exactly-once rule (delete a
file's rows, insert them, mark the file loaded: store/loader.py) holds only when no other
loader inserts the same file meanwhile (docs/decisions.md, "Team mode: exactly once under a
load lease"). Searches never take it.

The lease lives where every process of the team can see it and where a dead holder loses it
at once: a PostgreSQL session-level advisory lock (released when the holder's connection
closes, its process killed included), or with SQLite (one host) an `flock` on a file of the
home (released by the kernel when the process dies).
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

from casescope.model.db import Database

logger = logging.getLogger(__name__)

#: The advisory lock key of the load lease ("casescope load" as a number).
LEASE_KEY = 0x63_61_73_65_6C_6F_61_64
LOCK_FILE = "load.lock"


@contextmanager
def _postgres_lease(db: Database) -> Iterator[bool]:
    with db.engine.connect() as raw:
        connection = raw.execution_options(isolation_level="AUTOCOMMIT")
        held = bool(
            connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LEASE_KEY}).scalar()
        )
        try:
            yield held
        finally:
            if held:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LEASE_KEY})


@contextmanager
def _file_lease(db: Database) -> Iterator[bool]:
    path = db.settings.home_dir / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the flock


@contextmanager
def load_lease(db: Database) -> Iterator[bool]:
    """Hold the load lease for the block if no other process holds it; yields whether it is
    held (False: another process is loading, and will load what is ready)."""
    lease = _postgres_lease if db.engine.dialect.name == "postgresql" else _file_lease
    with lease(db) as held:
        if not held:
            logger.debug("another process holds the load lease: not loading now")
        yield held

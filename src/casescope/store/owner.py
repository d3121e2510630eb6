"""Exactly one process owns the embedded index; a ClickHouse server has no owner.

Why one owner: docs/decisions.md, "One process owns the index and loads in batches".

The owner holds an exclusive `flock` on ``<home>/index.lock``; the kernel releases it when the
process dies, so a crashed owner never leaves a stale lock. The file records the owner's pid
and role so that a refused process can say who holds it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from casescope.config import Settings
from casescope.errors import IndexBusyError
from casescope.store.index_url import IndexTransport, parse_index_url
from casescope.store.query_bounds import QueryTimeouts

if TYPE_CHECKING:
    from casescope.store.index import EventIndex


def _read_holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "another process"
    except OSError:
        return "another process"


@contextmanager
def index_lock(path: Path, role: str) -> Iterator[None]:
    """Hold the owner lock for the duration of the block, or raise IndexBusyError at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexBusyError(
                f"the event index is owned by {_read_holder(path)}; "
                "use that process (e.g. the web API of `casescope serve`) or stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} ({role})".encode())
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


@contextmanager
def open_index(settings: Settings, role: str, *, short_lived: bool = False) -> Iterator[EventIndex]:
    """Open the event index CASESCOPE_INDEX_URL names: the embedded one as its owner (or
    IndexBusyError), a ClickHouse server without any lock (loaders claim the files they
    load: store/load_claims.py). IndexConfigError, naming the setting, when it cannot be
    used.
    `short_lived`: the process exits once its command is done (`ChdbIndex`'s `page_out`)."""
    target = parse_index_url(settings.index_url)
    timeouts = QueryTimeouts.from_settings(settings)
    # each implementation is imported when it is opened: the server's client brings pandas,
    # chDB's module the Arrow stack, and a command that never opens the index needs neither
    if target.transport is not IndexTransport.EMBEDDED:
        from casescope.store.server_index import ClickHouseServerIndex

        index: EventIndex = ClickHouseServerIndex(target, timeouts)
        try:
            yield index
        finally:
            index.close()
        return
    from casescope.store.index import ChdbIndex

    with index_lock(settings.owner_lock_path, role):
        owned = ChdbIndex(
            settings.index_dir,
            memory_mb=settings.index_memory_mb,
            timeouts=timeouts,
            page_out=not short_lived,
        )
        try:
            yield owned
        finally:
            owned.close()

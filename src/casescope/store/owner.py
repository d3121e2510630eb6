"""Exactly one process owns the embedded index.

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

from casescope.config import Settings
from casescope.errors import IndexBusyError
from casescope.store.index import ChdbIndex
from casescope.store.query_bounds import QueryTimeouts


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
def open_index(settings: Settings, role: str) -> Iterator[ChdbIndex]:
    """Become the index owner and open the embedded index."""
    with index_lock(settings.owner_lock_path, role):
        index = ChdbIndex(
            settings.index_dir,
            memory_mb=settings.index_memory_mb,
            timeouts=QueryTimeouts.from_settings(settings),
        )
        try:
            yield index
        finally:
            index.close()

"""The owned index shared by the threads of one process (`casescope serve`).

Queries (searches, counts, facets, export chunks, the dashboard) are readers: up to
`readers` of them run at once, each on a connection of its own (`ChdbIndex.reader`), so a
long export chunk or exact facet does not hold up other users' searches. Loads, deletes and
anything else that changes the index are writers, on the owner's connection: a writer runs
alone, once the readers that started before it are done, and readers that come while a
writer waits queue behind it (a steady stream of searches cannot starve the loader). A
writer excludes readers so that a load keeps the whole memory budget that its INSERT was
sized for (`store/chdb_memory.py`).

bench/index_concurrency.py measures why: one chDB connection runs its queries one at a
time and a query on it ends the stream open there; several connections run in parallel.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from casescope.errors import CasescopeError

if TYPE_CHECKING:
    from casescope.store.index import EventIndex


class ReadWriteLock:
    """Many readers or one writer; a waiting writer goes before readers that come after it.
    Not re-entrant: a thread holding it must not ask for it again."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0
        self._readers_waiting = 0

    def waiting(self) -> tuple[int, int]:
        """(readers, writers) waiting for the lock now."""
        with self._cond:
            return self._readers_waiting, self._writers_waiting

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            self._readers_waiting += 1
            try:
                self._cond.wait_for(lambda: not self._writing and not self._writers_waiting)
            finally:
                self._readers_waiting -= 1
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                self._cond.wait_for(lambda: not self._writing and not self._readers)
            finally:
                self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class SharedIndex:
    """An owned `EventIndex` with a pool of reader connections behind a `ReadWriteLock`."""

    def __init__(self, index: EventIndex, readers: int) -> None:
        if readers < 1:
            raise ValueError("a shared index needs at least one reader")
        self._owner = index
        self._lock = ReadWriteLock()
        self._idle: queue.SimpleQueue[EventIndex] = queue.SimpleQueue()
        self._readers = [index.reader() for _ in range(readers)]
        self._closed = False
        for reader in self._readers:
            self._idle.put(reader)

    @contextlib.contextmanager
    def read(self) -> Iterator[EventIndex]:
        """A reader connection, for queries only, beside other readers (waits while a writer
        runs or waits, or while every reader connection is busy)."""
        with self._lock.shared():
            self._check_open()
            reader = self._idle.get()
            try:
                yield reader
            finally:
                self._idle.put(reader)

    @contextlib.contextmanager
    def write(self) -> Iterator[EventIndex]:
        """The owner's connection, alone: for loads, deletes and hunts that load first."""
        with self._lock.exclusive():
            self._check_open()
            yield self._owner

    def close(self) -> None:
        """Close the reader connections once no one uses the index; from then on it refuses
        readers and writers, and the owner's connection is the caller's to close."""
        with self._lock.exclusive():
            self._closed = True
            for reader in self._readers:
                reader.close()
            self._readers = []

    def _check_open(self) -> None:
        if self._closed:
            raise CasescopeError("the event index is closed: the server is shutting down")

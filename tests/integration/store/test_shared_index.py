"""Readers of the owned index run side by side; a writer runs alone and is not starved.

Orderings are asserted through events and the lock's own waiting counts, never through
timing: the waits below only stop a broken lock from hanging the test run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from casescope.errors import CasescopeError
from casescope.parse.batch import BatchBuilder
from casescope.services import event_search as es
from casescope.services.search import SearchRequest, build_where
from casescope.store.events_table import DATABASE
from casescope.store.index import ChdbIndex
from casescope.store.shared_index import ReadWriteLock, SharedIndex
from tests.integration.conftest import index_of

GUARD = 60.0  # seconds before a test that would hang fails instead
EVENTS = 20_000  # several blocks of a stream (STREAM_SETTINGS: 4,096 rows)


def _until(condition: Callable[[], bool]) -> None:
    """Wait (polling) until `condition` holds; fails after GUARD seconds."""
    done = threading.Event()
    for _ in range(int(GUARD * 100)):
        if condition():
            return
        done.wait(0.01)
    raise AssertionError("the condition never held")


def _thread(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_readers_share_and_a_waiting_writer_goes_before_later_readers() -> None:
    lock = ReadWriteLock()
    log: list[str] = []
    first_in, release_first = threading.Event(), threading.Event()

    def reader(name: str, hold: threading.Event | None = None) -> None:
        with lock.shared():
            log.append(f"{name} in")
            if hold is not None:
                first_in.set()
                assert hold.wait(GUARD)
            log.append(f"{name} out")

    def writer() -> None:
        with lock.exclusive():
            log.append("writer")

    first = _thread(lambda: reader("r1", release_first))
    assert first_in.wait(GUARD)
    second = _thread(lambda: reader("r2"))  # readers share: r2 gets in while r1 holds
    second.join(GUARD)
    assert log == ["r1 in", "r2 in", "r2 out"]
    writing = _thread(writer)
    _until(lambda: lock.waiting() == (0, 1))  # the writer waits for r1
    third = _thread(lambda: reader("r3"))
    _until(lambda: lock.waiting() == (1, 1))  # r3 waits behind the writer, not beside r1
    release_first.set()
    for thread in (first, writing, third):
        thread.join(GUARD)
    assert log[3:] == ["r1 out", "writer", "r3 in", "r3 out"]


@pytest.fixture(scope="module")
def owner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbIndex]:
    """The owner's connection to an index of EVENTS events (one chDB engine per process:
    every test of the module shares it)."""
    builder = BatchBuilder()
    for n in range(EVENTS):
        core = (1_700_000_000_000_000 + n, 4688, "Security", "P", f"H{n % 7}", n, 4, "u", "")
        builder.add(core, {"CommandLine": f"cmd.exe /c echo {n}"}, "{}")
    chdb_index = index_of(tmp_path_factory.mktemp("shared"), builder.flush())
    yield chdb_index
    chdb_index.close()


@pytest.fixture(scope="module")
def shared(owner: ChdbIndex) -> Iterator[SharedIndex]:
    shared_index = SharedIndex(owner, readers=2)
    yield shared_index
    shared_index.close()


def test_a_search_runs_while_another_reader_streams_and_the_stream_stays_whole(
    shared: SharedIndex,
) -> None:
    """What an export chunk does (a stream on a reader) does not hold up a search, and the
    search does not cut the stream short (one connection would: bench/index_concurrency.py).
    """
    streaming, searched = threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def export_chunk() -> None:
        with shared.read() as index:
            stream = index.stream_batches(f"SELECT seq FROM {DATABASE}.events", {}, 1000)
            rows = next(stream).num_rows
            streaming.set()
            seen["search done while streaming"] = searched.wait(GUARD)
            seen["rows"] = rows + sum(batch.num_rows for batch in stream)

    exporter = _thread(export_chunk)
    assert streaming.wait(GUARD)
    with shared.read() as index:
        where = build_where(SearchRequest(1, "echo"))
        page = es.search_page(index, where, es.PageSpec(), count_limit=None)
    searched.set()
    exporter.join(GUARD)
    assert page.total == EVENTS and len(page.rows) == 50
    assert seen == {"search done while streaming": True, "rows": EVENTS}


def test_a_writer_waits_for_the_readers_and_runs_alone(shared: SharedIndex) -> None:
    reading, release = threading.Event(), threading.Event()
    log: list[str] = []

    def reader() -> None:
        with shared.read():
            reading.set()
            assert release.wait(GUARD)
            log.append("reader done")

    def writer() -> None:
        with shared.write() as owner:
            log.append(f"writer in, {owner.count()} events")

    held = _thread(reader)
    assert reading.wait(GUARD)
    writing = _thread(writer)
    _until(lambda: shared._lock.waiting() == (0, 1))
    assert log == []  # the writer has not run beside the reader
    release.set()
    held.join(GUARD)
    writing.join(GUARD)
    assert log == ["reader done", f"writer in, {EVENTS} events"]


def test_a_closed_index_refuses_readers_and_writers(owner: ChdbIndex) -> None:
    shared_index = SharedIndex(owner, readers=1)
    shared_index.close()
    with pytest.raises(CasescopeError, match="closed"), shared_index.read():
        pass
    with pytest.raises(CasescopeError, match="closed"), shared_index.write():
        pass
    assert owner.count() == EVENTS  # the owner's connection is its caller's to close

"""Searches and exports of an index of many parts: a large load the merges have not caught up
with (merges run niced), as `serve` holds it after a large upload. A read in time order
opens one stream per part; over IN_ORDER_MAX_PARTS parts the matches are sorted instead."""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest

from casescope.errors import IndexMemoryError
from casescope.parse.batch import BatchBuilder
from casescope.services import event_search as es
from casescope.services.search import ExportFormat, SearchRequest, build_where, search
from casescope.store.event_queries import TIME_ORDER
from casescope.store.events_table import DATABASE
from casescope.store.index import IN_ORDER_MAX_PARTS, ChdbIndex, LoadItem
from casescope.store.segments import SegmentWriter

PARTS = 40
ROWS = 300  # per part
T0 = 1_700_000_000_000_000  # microseconds
#: A query's memory limit (ClickHouse's `max_memory_usage`): 40 such parts took 75 MB read
#: in time order, 5 MB sorted.
QUERY_LIMIT_MB = 30


def _part(part: int, rnd: random.Random) -> BatchBuilder:
    """Events of file `part + 1`: event i at T0 + (i * PARTS + part) ms, so every part spans
    the whole time range; 3,000 characters of random text (about 1 MB of it per part)."""
    builder = BatchBuilder()
    for i in range(ROWS):
        text = "cmd.exe " + "".join(rnd.choices(string.ascii_lowercase + " ", k=3000))
        core = (T0 + (i * PARTS + part) * 1000, 4688, "Security", "P", "PC1", i, 4, "bob", "")
        builder.add(core, {"CommandLine": text}, "{}")
    return builder


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbIndex]:
    home: Path = tmp_path_factory.mktemp("many-parts")
    chdb_index = ChdbIndex(home / "index", memory_mb=300)
    chdb_index.execute(f"SYSTEM STOP MERGES {DATABASE}.events")
    # parts of a large file are wide (a file per column), as these small ones would not be
    chdb_index.execute(f"ALTER TABLE {DATABASE}.events MODIFY SETTING min_bytes_for_wide_part = 0")
    rnd = random.Random(7)
    for part in range(PARTS):
        target = home / "seg" / f"{part:02d}" / "events.parquet"
        with SegmentWriter(target, home / "tmp") as writer:
            writer.write(_part(part, rnd).flush())
            path = writer.commit()
        chdb_index.load([LoadItem(1, part + 1, path)])
    chdb_index.execute(f"SET max_memory_usage = {QUERY_LIMIT_MB * 1024 * 1024}")
    yield chdb_index
    chdb_index.close()


def _keys(rows: list[dict]) -> list[tuple[int, int]]:
    return [(int(row["file_id"]), int(row["seq"])) for row in rows]


def _expected(descending: bool, n: int) -> list[tuple[int, int]]:
    """The first `n` events in time order: (file id, seq) of event i of part p."""
    keys = [(part + 1, i) for i in range(ROWS) for part in range(PARTS)]
    return (keys[::-1] if descending else keys)[:n]


def test_the_index_does_not_read_these_parts_in_order(index: ChdbIndex) -> None:
    assert index.active_parts() == PARTS > IN_ORDER_MAX_PARTS
    assert not index.reads_in_order()


def test_a_read_in_time_order_over_these_parts_passes_the_limit(index: ChdbIndex) -> None:
    """What the tests below guard against: ClickHouse's own time-ordered read of these parts
    needs more than QUERY_LIMIT_MB."""
    where = build_where(SearchRequest(case_id=1, query="cmd.exe"))
    with pytest.raises(IndexMemoryError):
        index.query_rows(
            f"SELECT * FROM {DATABASE}.events WHERE {where.sql} ORDER BY {TIME_ORDER} LIMIT 51",
            where.params,
        )


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("query", ["", "cmd.exe", "EventID:4688"])
def test_a_page_over_many_parts_is_sorted_within_the_limit(
    index: ChdbIndex, query: str, descending: bool
) -> None:
    where = build_where(SearchRequest(case_id=1, query=query))
    first = es.search_page(index, where, es.PageSpec(limit=50, descending=descending))
    assert first.total == es.COUNT_LIMIT and not first.total_exact  # 12,000 matches: not sparse
    assert _keys(first.rows) == _expected(descending, 50)
    cursor = es.Cursor.decode(first.next_cursor or "")
    second = es.search_page(index, where, es.PageSpec(cursor, 50, descending=descending))
    assert _keys(second.rows) == _expected(descending, 100)[50:]


def test_the_offset_search_over_many_parts_is_sorted_within_the_limit(index: ChdbIndex) -> None:
    rows, total = search(index, SearchRequest(case_id=1, query="cmd.exe", limit=20, offset=30))
    assert total == PARTS * ROWS
    assert _keys(rows) == _expected(False, 50)[30:]


def test_an_export_over_many_parts_is_whole_and_within_the_limit(index: ChdbIndex) -> None:
    where = build_where(SearchRequest(case_id=1, query="cmd.exe"))
    batches = es.export_chunks(lambda: nullcontext(index), where, ExportFormat.CSV, 1_000)
    keys = [
        (file_id, seq)
        for batch in batches
        for file_id, seq in zip(
            batch.column("file_id").to_pylist(), batch.column("seq").to_pylist(), strict=True
        )
    ]
    assert keys == _expected(False, PARTS * ROWS)


def test_once_merged_the_index_reads_in_order_again(index: ChdbIndex) -> None:
    """Last: it merges the module's index."""
    index.execute(f"SYSTEM START MERGES {DATABASE}.events")
    assert index.compact() <= IN_ORDER_MAX_PARTS
    assert index.reads_in_order()

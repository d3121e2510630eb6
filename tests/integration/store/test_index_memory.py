"""The index owner's memory bound: large segments load in slices, chDB's memory is capped."""

from __future__ import annotations

import logging
import subprocess
import sys
import time

import orjson
import pyarrow as pa
import pytest

from casescope.config import Settings
from casescope.errors import IndexBusyError, IndexMemoryError
from casescope.model.db import Database
from casescope.model.enums import IndexState
from casescope.model.tables import EvidenceFile
from casescope.services.search import SearchRequest, build_where
from casescope.store.chdb_memory import (
    DIRTY_DECAY_MS,
    MERGE_NICE,
    MIN_INSERT_ROWS,
    STREAM_SETTINGS,
    insert_rows_for,
)
from casescope.store.event_queries import TIME_ORDER
from casescope.store.exports import ExportFormat, export_select
from casescope.store.index import COMPACT_ABOVE_PARTS, ChdbIndex, LoadItem
from casescope.store.loader import load_pending, rows_per_insert
from casescope.store.owner import open_index
from tests.integration.conftest import add_files
from tests.integration.test_loader import make_batch, mark_ready, write_segment

MIB = 1024 * 1024


def _duplicates(index: ChdbIndex) -> int:
    return int(
        index.scalar("SELECT count() - uniqExact(file_id, seq) AS d FROM casescope.events", {})
    )


def test_large_segment_loads_in_slices_exactly_once(
    settings: Settings, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings.model_copy(update={"load_batch_rows": 1000})
    big, *small = add_files(db, 4)
    mark_ready(db, big, write_segment(settings, "b" * 64, make_batch(2500, "big")), 2500)
    for n, file_id in enumerate(small):
        mark_ready(db, file_id, write_segment(settings, f"{n:064x}", make_batch(300, "s")), 300)
    index = ChdbIndex(settings.index_dir)
    try:
        with caplog.at_level(logging.INFO, logger="casescope.store.loader"):
            report = load_pending(db, index, settings)
        assert (report.files, report.rows) == (4, 3400)
        slices = [r.getMessage() for r in caplog.records if "loaded events" in r.getMessage()]
        assert slices == [
            f"loaded events 0-1000 of file {big}",
            f"loaded events 1000-2000 of file {big}",
            f"loaded events 2000-end of file {big}",
        ]
        assert index.counts_by_file(1) == {big: 2500, **{f: 300 for f in small}}
        assert _duplicates(index) == 0
    finally:
        index.close()


def test_owner_dead_after_some_slices_reloads_the_file_once(
    settings: Settings, db: Database
) -> None:
    """Slices of a file are in the index but its bookkeeping is still pending (the owner
    died between slices): the next owner deletes them and loads the whole file again."""
    settings = settings.model_copy(update={"load_batch_rows": 400})
    [file_id] = add_files(db, 1)
    path = write_segment(settings, "c" * 64, make_batch(1000, "x"))
    mark_ready(db, file_id, path, 1000)
    index = ChdbIndex(settings.index_dir)
    try:
        index.load([LoadItem(1, file_id, path, 0, 400)])
        index.load([LoadItem(1, file_id, path, 400, 800)])
        assert index.count() == 800
        load_pending(db, index, settings)
        assert index.count() == 1000
        assert _duplicates(index) == 0
        with db.read() as session:
            assert session.get(EvidenceFile, file_id).index_state is IndexState.LOADED
    finally:
        index.close()


def test_a_slice_must_be_loaded_alone(settings: Settings) -> None:
    path = write_segment(settings, "d" * 64, make_batch(10, "x"))
    other = write_segment(settings, "e" * 64, make_batch(10, "x"))
    index = ChdbIndex(settings.index_dir)
    try:
        with pytest.raises(ValueError, match="loaded alone"):
            index.load([LoadItem(1, 1, path, 0, 5), LoadItem(1, 2, other)])
        assert index.count() == 0
    finally:
        index.close()


def test_rows_per_insert_follow_the_memory_budget(settings: Settings) -> None:
    assert insert_rows_for(480, rss_mb=470) == MIN_INSERT_ROWS  # no room: the floor
    assert insert_rows_for(480, rss_mb=300) > insert_rows_for(480, rss_mb=350)
    assert insert_rows_for(480, rss_mb=300) < insert_rows_for(800, rss_mb=300)
    tight = settings.model_copy(update={"index_memory_mb": 480, "load_batch_rows": 500_000})
    assert rows_per_insert(tight, rss_mb=300) == insert_rows_for(480, 300) < 500_000
    loose = settings.model_copy(update={"index_memory_mb": 4000, "load_batch_rows": 5000})
    assert rows_per_insert(loose) == 5000  # the measured RSS is far below 4 GB


def test_owner_caps_chdb_memory_and_survives_a_query_over_it(settings: Settings) -> None:
    settings = settings.model_copy(update={"index_memory_mb": 300})
    with open_index(settings, role="test") as index:
        rows = index.query_rows(
            "SELECT name, value FROM system.server_settings WHERE name IN "
            "('max_server_memory_usage', 'mark_cache_size', 'primary_index_cache_size', "
            "'background_pool_size')"
        )
        values = {row["name"]: int(row["value"]) for row in rows}
        assert values["max_server_memory_usage"] == 300 * MIB
        assert values["mark_cache_size"] <= 300 * MIB // 16
        assert values["primary_index_cache_size"] <= 300 * MIB // 16
        assert values["background_pool_size"] == 1  # one merge at a time in a small budget
        # ~1 GB in one aggregate: refused by chDB's memory limit, not grown into
        with pytest.raises(IndexMemoryError, match="CASESCOPE_INDEX_MEMORY_MB"):
            index.query_rows(
                "SELECT length(groupArray(repeat('x', 1000))) AS n FROM numbers(1000000)"
            )
        with pytest.raises(IndexMemoryError, match="CASESCOPE_INDEX_MEMORY_MB"):
            list(  # the same when streamed (exports, IOC hunts): a clear error, no traceback
                index.stream_batches(
                    "SELECT length(groupArray(repeat('x', 1000))) AS n FROM numbers(1000000)"
                )
            )
        assert index.scalar("SELECT 1 AS one") == 1  # the index is still usable
        with pytest.raises(IndexBusyError), open_index(settings, role="second"):
            pass  # the index is still owned by this process only


def test_chdb_memory_worker_reads_this_process_only(settings: Settings) -> None:
    """chDB never counts its cgroup (the workers, a desktop session) against the budget,
    jemalloc hands freed pages back after DIRTY_DECAY_MS (JE_MALLOC_CONF, set before chDB is
    imported), and merge threads run at nice MERGE_NICE."""
    with open_index(settings.model_copy(update={"index_memory_mb": 300}), role="test") as index:
        rows = index.query_rows(
            "SELECT name, value FROM system.server_settings "
            "WHERE name LIKE 'memory_worker%' OR name = 'os_threads_nice_value_merge_mutate'"
        )
        values = {row["name"]: float(row["value"]) for row in rows}
        stats = index.query_rows("SELECT stats FROM system.jemalloc_stats")[0]["stats"]
    assert values["memory_worker_use_cgroup"] == 0
    assert values["memory_worker_dynamic_hard_limit"] == 0
    assert values["memory_worker_rss_speculative_reserve_ratio"] == 0
    assert values["os_threads_nice_value_merge_mutate"] == MERGE_NICE == 19
    assert f"opt.dirty_decay_ms: {DIRTY_DECAY_MS} " in stats


#: Loads a segment into a fresh index at a 280 MB budget and exports it as JSONL, in a process
#: of its own: chDB's memory accounting is per process, and this one has run other tests.
_EXPORT_IN_A_FRESH_OWNER = """
import sys
from pathlib import Path
from contextlib import nullcontext
from casescope.services.event_search import export_chunks
from casescope.services.search import ExportFormat, SearchRequest, build_where, export_lines
from casescope.store.index import ChdbIndex, LoadItem
index = ChdbIndex(Path(sys.argv[1]), memory_mb=280)
segment, events = Path(sys.argv[2]), int(sys.argv[3])
for start in range(0, events, 10_000):
    index.load([LoadItem(1, 1, segment, start, start + 10_000)])
index.wait_for_merges(300)
with open(sys.argv[4], "wb") as out:
    where = build_where(SearchRequest(case_id=1))
    for batch in export_chunks(lambda: nullcontext(index), where, ExportFormat.JSONL):
        out.write(export_lines(batch))
"""


def test_an_export_of_wide_events_streams_within_a_small_budget(settings: Settings) -> None:
    """150,000 events of 1.5 KB exported in time order at a 280 MB budget. Written when the
    export was one stream: in ClickHouse's default blocks (65,505 rows) its first block
    passed the budget. In 10,000-event chunks it no longer depends on the block size (checked
    with ClickHouse's default: it passes); the bound it holds is the chunked export's."""
    events = 150_000
    batch = make_batch(events, "wide")
    column = batch.schema.get_field_index("raw")
    batch = batch.set_column(column, batch.schema.field(column), pa.array(["x" * 1500] * events))
    segment = write_segment(settings, "9" * 64, batch)
    del batch
    out = settings.home_dir / "export.jsonl"
    args = [str(settings.index_dir), str(segment), str(events), str(out)]
    proc = subprocess.run(
        [sys.executable, "-c", _EXPORT_IN_A_FRESH_OWNER, *args], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = out.read_bytes().splitlines()
    assert len(lines) == events
    assert orjson.loads(lines[-1])["raw"] == "x" * 1500


def test_an_export_over_many_parts_reads_them_without_buffering(settings: Settings) -> None:
    """A read in time order merges one stream per part; ClickHouse's read-ahead buffer of
    each stream made the export of the 5M-event case (12 parts, as `ingest` leaves it) fail
    at once at the 480 MB budget. STREAM_SETTINGS turn it off: no BufferChunks step."""
    index = ChdbIndex(settings.index_dir, memory_mb=300)
    try:
        index.execute("SYSTEM STOP MERGES casescope.events")
        for n in range(3):
            sha = f"{n:02d}" + "b" * 62
            index.load([LoadItem(1, n + 1, write_segment(settings, sha, make_batch(200, sha)))])
        where = build_where(SearchRequest(case_id=1))
        sql = f"{export_select(ExportFormat.CSV)} WHERE {where.sql} ORDER BY {TIME_ORDER}"

        def pipeline(stream_settings: str) -> str:
            explain = f"EXPLAIN PIPELINE {sql} SETTINGS {stream_settings}"
            # its arrows come back from JSONEachRow as text orjson refuses
            lines = f"SELECT replaceAll(explain, '→', '->') AS line FROM ({explain})"
            return "\n".join(row["line"] for row in index.query_rows(lines, where.params))

        assert "MergingSortedTransform 3 -> 1" in pipeline(STREAM_SETTINGS)
        assert "BufferChunks" not in pipeline(STREAM_SETTINGS)
        assert "BufferChunks" in pipeline("max_block_size = 4096")  # ClickHouse's default
    finally:
        index.close()


def test_partial_rows_of_a_failed_insert_are_removed_slice_by_slice(settings: Settings) -> None:
    """Before a load that hit the memory limit is retried, what it may have written goes:
    only the slice's rows for a slice, the files' rows otherwise; nothing else."""
    path = write_segment(settings, "f" * 64, make_batch(1000, "x"))
    other = write_segment(settings, "9" * 64, make_batch(300, "y"))
    index = ChdbIndex(settings.index_dir)
    try:
        index.load([LoadItem(1, 7, path, 0, 400)])
        index.load([LoadItem(1, 7, path, 400, 800)])
        index.load([LoadItem(1, 8, other)])
        index.remove_partial([LoadItem(1, 7, path, 400, 800)])
        assert index.counts_by_file(1) == {7: 400, 8: 300}
        assert (
            index.scalar("SELECT max(seq) AS m FROM casescope.events WHERE file_id = 7", {}) == 399
        )
        index.load([LoadItem(1, 7, path, 400, None)])  # the retry, to the end
        assert index.counts_by_file(1) == {7: 1000, 8: 300}
        assert _duplicates(index) == 0
        index.remove_partial([LoadItem(1, 8, other)])
        assert index.counts_by_file(1) == {7: 1000}
    finally:
        index.close()


def test_rows_present_looks_at_the_slice_or_the_whole_file(settings: Settings) -> None:
    """Whether a piece's rows are already loaded: the slice's seq range of its file, or any
    row of the file for a whole-file item."""
    path = write_segment(settings, "e" * 64, make_batch(1000, "x"))
    index = ChdbIndex(settings.index_dir)
    try:
        index.load([LoadItem(1, 7, path, 0, 400)])
        assert index.rows_present(LoadItem(1, 7, path))
        assert index.rows_present(LoadItem(1, 7, path, 300, 500))
        assert index.rows_present(LoadItem(1, 7, path, 0, None))
        assert not index.rows_present(LoadItem(1, 7, path, 400, 800))
        assert not index.rows_present(LoadItem(1, 7, path, 400, None))
        assert not index.rows_present(LoadItem(1, 8, path))
    finally:
        index.close()


def test_compact_waits_until_the_merges_are_done(settings: Settings) -> None:
    """What a large load leaves (merges run niced and fall behind it) is merged before
    `compact` returns: fewer parts, the same rows once each, and no merge left to run."""
    index = ChdbIndex(settings.index_dir, memory_mb=300)
    try:
        index.execute("SYSTEM STOP MERGES casescope.events")  # as if starved by the parse
        for n in range(24):
            sha = f"{n:02d}" + "c" * 62
            index.load([LoadItem(1, n + 1, write_segment(settings, sha, make_batch(500, sha)))])
        assert index.active_parts() == 24
        index.execute("SYSTEM START MERGES casescope.events")
        steps: list[int] = []
        left = index.compact(steps.append)
        assert left == index.active_parts() <= COMPACT_ABOVE_PARTS
        assert steps == sorted(steps, reverse=True)
        assert index.count() == 24 * 500 and _duplicates(index) == 0
        time.sleep(1)
        assert index.active_parts() == left  # the background merges had nothing left to do
    finally:
        index.close()


def _events_ddl(settings: Settings) -> str:
    """The events table's CREATE statement as an index opened now sees it."""
    index = ChdbIndex(settings.index_dir)
    try:
        return index.scalar(
            "SELECT create_table_query AS q FROM system.tables WHERE name = 'events'", {}
        )
    finally:
        index.close()


def test_events_table_gets_the_bounded_merge_settings(settings: Settings) -> None:
    ddl = _events_ddl(settings)
    assert "merge_max_block_size = 8192" in ddl
    assert "merge_max_block_size_bytes = 4194304" in ddl
    assert "max_bytes_to_merge_at_max_space_in_pool = 536870912" in ddl
    assert "max_parts_to_merge_at_once = 10" in ddl
    assert "vertical_merge_algorithm_min_rows_to_activate = 1" in ddl
    assert "vertical_merge_algorithm_min_bytes_to_activate = 33554432" in ddl
    assert "vertical_merge_algorithm_min_columns_to_activate = 1" in ddl


def test_an_index_made_before_a_merge_setting_gets_it_when_opened(settings: Settings) -> None:
    """Merge settings are applied at every open: an existing index is not left behind."""
    index = ChdbIndex(settings.index_dir)
    index.execute(
        "ALTER TABLE casescope.events MODIFY SETTING vertical_merge_algorithm_min_rows_to_activate"
        " = 131072, vertical_merge_algorithm_min_bytes_to_activate = 0"
    )
    index.close()
    ddl = _events_ddl(settings)
    assert "vertical_merge_algorithm_min_rows_to_activate = 1" in ddl
    assert "vertical_merge_algorithm_min_bytes_to_activate = 33554432" in ddl

"""Export chunks follow the width of the events: a chunk holds about EXPORT_CHUNK_BYTES of
lines, and one that outgrows the index's budget all the same is fetched again in fewer rows.
chDB builds a chunk as one block, in several times its lines' bytes: 10,000 events of
script-block width would need GBs."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from contextlib import nullcontext
from pathlib import Path

import pyarrow as pa
import pytest

from casescope.errors import IndexMemoryError
from casescope.parse.batch import BatchBuilder
from casescope.services import event_search as es
from casescope.services.search import ExportFormat, SearchRequest, build_where, export_lines
from casescope.store.index import ChdbIndex, LoadItem
from casescope.store.segments import SegmentWriter

NARROW, WIDE = 3_000, 5_000
WIDE_CHARS = 10_000  # a PowerShell script block's width
T0 = 1_700_000_000_000_000  # microseconds
#: A query's memory limit (`max_memory_usage`): the chunk that first reaches the wide events
#: (4,000 of them: ~40 MB of lines) needs 150-250 MB; ~1,600 (16 MB) fit in 75.
QUERY_LIMIT_MB = 100
#: A budget others hold most of: 500 wide events fit in 30-50 MB, 1,000 do not.
TIGHT_LIMIT_MB = 40


class _Recording:
    """The real index, noting the rows each export chunk asks for."""

    def __init__(self, index: ChdbIndex) -> None:
        self.index = index
        self.asked: list[int] = []
        self.failed: list[int] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.index, name)

    def stream_batches(
        self, sql: str, params: Mapping[str, object], **kwargs: object
    ) -> Iterator[pa.RecordBatch]:
        rows = int(params["lim"])  # type: ignore[call-overload]
        self.asked.append(rows)
        try:
            yield from self.index.stream_batches(sql, params, **kwargs)  # type: ignore[arg-type]
        except IndexMemoryError:
            self.failed.append(rows)
            raise


def _events() -> pa.RecordBatch:
    """NARROW short events, then WIDE of WIDE_CHARS random characters, one per millisecond."""
    rnd = random.Random(11)
    builder = BatchBuilder()
    for i in range(NARROW + WIDE):
        chars = WIDE_CHARS if i >= NARROW else 20
        text = rnd.randbytes(chars // 2).hex()
        core = (T0 + i * 1000, 4104, "PowerShell", "P", "PC1", i, 4, "bob", "")
        builder.add(core, {"ScriptBlockText": text}, "{}")
    return builder.flush()


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbIndex]:
    """No server budget (it counts the RSS of this whole test process): the query limit is
    what these tests are about."""
    home: Path = tmp_path_factory.mktemp("export-chunks")
    chdb_index = ChdbIndex(home / "index")
    try:
        with SegmentWriter(home / "seg" / "events.parquet", home / "tmp") as writer:
            writer.write(_events())
            path = writer.commit()
        chdb_index.load([LoadItem(1, 1, path)])
        chdb_index.execute(f"SET max_memory_usage = {QUERY_LIMIT_MB * 1024 * 1024}")
        yield chdb_index
    finally:
        chdb_index.close()


def _export(index: ChdbIndex | _Recording) -> list[pa.RecordBatch]:
    where = build_where(SearchRequest(case_id=1))
    return list(es.export_chunks(lambda: nullcontext(index), where, ExportFormat.JSONL))


def test_a_chunk_of_the_wide_events_passes_the_limit(index: ChdbIndex) -> None:
    """What the export must get around: the chunk its rows ramp to after the narrow events
    (4,000 rows, all wide) needs more than the limit."""
    cursor = es.Cursor("2023-11-14 22:13:22.999000", 1, NARROW - 1)  # the last narrow event
    where = build_where(SearchRequest(case_id=1))
    with pytest.raises(IndexMemoryError):
        es._export_chunk(lambda: nullcontext(index), where, ExportFormat.JSONL, cursor, 4_000)


def test_every_event_in_order_in_chunks_of_about_the_same_bytes(index: ChdbIndex) -> None:
    recording = _Recording(index)
    batches = _export(recording)
    seqs = [seq for batch in batches for seq in batch.column("seq").to_pylist()]
    assert seqs == list(range(NARROW + WIDE))
    lines = b"".join(bytes(export_lines(batch)) for batch in batches).splitlines()
    assert len(lines) == NARROW + WIDE
    assert len(lines[-1]) > WIDE_CHARS
    asked = recording.asked
    assert asked[:3] == [1_000, 2_000, 4_000]  # narrow: doubling from the first chunk
    assert 1_000 in asked[3:]  # the 4,000 failed and was fetched again in a quarter
    wide_chunk = max(1, es.EXPORT_CHUNK_BYTES // (WIDE_CHARS + 300))
    assert min(asked) <= wide_chunk  # then chunks of ~16 MB of lines


def test_a_tight_budget_does_not_ask_again_for_what_failed(index: ChdbIndex) -> None:
    """A chunk that failed for memory is not asked for again once the rows grow back:
    later chunks aim at half its bytes (before: 250, 500, 1,000 failed, 250, ... a wasted
    query every third chunk)."""
    recording = _Recording(index)
    index.execute(f"SET max_memory_usage = {TIGHT_LIMIT_MB * 1024 * 1024}")
    try:
        batches = _export(recording)
    finally:
        index.execute(f"SET max_memory_usage = {QUERY_LIMIT_MB * 1024 * 1024}")
    assert sum(batch.num_rows for batch in batches) == NARROW + WIDE
    assert recording.failed[:2] == [4_000, 1_000]  # the wide events at 40 and 10 MB of lines
    failed_at = recording.asked.index(4_000) + 1
    assert recording.asked[failed_at] == 1_000
    later = recording.asked[failed_at + 1 :]
    assert later  # the wide events came in smaller chunks ...
    assert max(later) < 1_000  # ... and never as many as failed again
    assert recording.failed == [4_000, 1_000]

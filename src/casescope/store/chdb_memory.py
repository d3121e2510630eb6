"""The index owner's memory: chDB's allocator, server limits and per-query block sizes.

What bounds the owner's RSS (`CASESCOPE_INDEX_MEMORY_MB`; docs/decisions.md, "Index owner
memory: bounded by CASESCOPE_INDEX_MEMORY_MB"): jemalloc's decay (set here, before chDB is
imported), the server settings passed in the connection string, the rows of one INSERT
(`insert_rows_for`) and the block sizes of loads and streams.
"""

from __future__ import annotations

import os
from pathlib import Path

#: chDB links jemalloc, which by default keeps freed pages resident for 5 s: during a load
#: that is most of the owner's RSS (`bench/index_memory.py`). Returning them at once keeps
#: RSS near what is in use. jemalloc reads this variable (its `JE_` prefix, not
#: `MALLOC_CONF`) once, when chDB is first imported, which happens only in `ChdbIndex`; a
#: value set by the user wins. (Why not keep them briefly and let chDB's memory worker purge
#: them: docs/decisions.md, "Index owner memory: bounded by CASESCOPE_INDEX_MEMORY_MB".)
DIRTY_DECAY_MS = 0
os.environ.setdefault("JE_MALLOC_CONF", f"dirty_decay_ms:{DIRTY_DECAY_MS}")

#: Single-threaded read and small blocks (ClickHouse's defaults read with many threads and
#: large blocks, each a buffer of wide events held at once). What bounds the owner's memory
#: is the allocator setting above, the rows per INSERT (`insert_rows_for`) and the server
#: limits (`server_settings`).
LOAD_SETTINGS = (
    "max_threads = 1, max_insert_threads = 1, max_block_size = 8192, "
    "min_insert_block_size_rows = 65536, min_insert_block_size_bytes = 33554432"
)

#: A streamed result (export chunks, IOC hunts) travels in blocks of this many rows.
#: ClickHouse's default (65,505) makes a block of wide events tens of MB in each of several
#: buffers, enough for one stream to fail at the default budget. A read in time order merges
#: one stream per part, and ClickHouse's default read-ahead per stream multiplies that by
#: the parts (tests/integration/store/test_index_memory.py checks the pipeline).
STREAM_SETTINGS = "max_block_size = 4096, read_in_order_use_buffering = 0"

#: One INSERT adds to the owner's RSS a fixed part plus a part per 1,000 events, whatever
#: the block sizes (`bench/index_memory.py` shows both). The constants keep a margin above
#: them for events wider than that benchmark's ~330-byte ones.
INSERT_OVERHEAD_MB = 80
INSERT_MB_PER_1000_ROWS = 1.0
MIN_INSERT_ROWS = 10_000

#: The nice value of chDB's merge threads (`server_settings`): the lowest priority.
MERGE_NICE = 19

_MIB = 1024 * 1024


def insert_rows_for(memory_mb: int, rss_mb: float) -> int:
    """Most events one INSERT may hold so that an owner now at `rss_mb` stays within
    `memory_mb` (never fewer than MIN_INSERT_ROWS: tiny INSERTs make too many parts)."""
    spare_mb = memory_mb - rss_mb - INSERT_OVERHEAD_MB
    return max(MIN_INSERT_ROWS, int(spare_mb * 1000 / INSERT_MB_PER_1000_ROWS))


def server_settings(memory_mb: int) -> dict[str, int]:
    """chDB server settings bounding its memory by `memory_mb` instead of the host's RAM.

    `max_server_memory_usage` caps everything chDB allocates (not its mapped code): past it a
    query fails with MEMORY_LIMIT_EXCEEDED rather than growing the process. The caches, sized
    by default as fractions of the host's RAM (GBs of marks and primary keys), get small
    fixed shares of the budget; the uncompressed caches stay off; below 1 GiB of budget one
    merge runs at a time, two above, at the lowest CPU priority; chDB's memory worker reads
    only this process. Two query settings ride along as the session's defaults.
    """
    budget = memory_mb * _MIB
    return {
        "max_server_memory_usage": budget,
        "mark_cache_size": budget // 32,
        "index_mark_cache_size": budget // 64,
        "primary_index_cache_size": budget // 32,
        "text_index_tokens_cache_size": budget // 64,
        "text_index_header_cache_size": budget // 64,
        "text_index_postings_cache_size": budget // 32,
        "query_condition_cache_size": budget // 64,
        "parquet_metadata_cache_size": budget // 64,
        "uncompressed_cache_size": 0,
        "index_uncompressed_cache_size": 0,
        # Merges at a time, whatever the host's cores. Two (vertical) merges beside a piece
        # INSERT take the owner past the 500 MB goal on `bench/large_files.py`'s files; one
        # is no slower there, and a few per cent slower on narrow events (`bench/ingest.py`).
        "background_pool_size": 1 if memory_mb < 1024 else 2,
        "background_merges_mutations_concurrency_ratio": 1,
        # Merge threads run at the lowest CPU priority: while a large file is parsed and
        # loaded, the parse and the INSERTs are what the analyst waits for, and merges take
        # the CPU they leave (`bench/large_files.py`, "parse + index"; docs/decisions.md,
        # "Merges: large parts, vertical, niced, one at a time").
        "os_threads_nice_value_merge_mutate": MERGE_NICE,
        # chDB's memory worker reads this process's own memory (jemalloc's), not its
        # cgroup's: a cgroup holds the workers and, on a desktop, the whole session, which
        # ClickHouse would count against the budget. Nor does it shrink the budget to the
        # host's free memory, or add a guess of the growth to come.
        "memory_worker_use_cgroup": 0,
        "memory_worker_dynamic_hard_limit": 0,
        "memory_worker_rss_speculative_reserve_ratio": 0,
        # query defaults: large sorts and aggregations spill to disk instead of failing
        "max_bytes_before_external_sort": budget // 4,
        "max_bytes_before_external_group_by": budget // 4,
    }


def connection_string(path: Path, memory_mb: int | None) -> str:
    if memory_mb is None:
        return str(path)
    if any(ch in str(path) for ch in "?&="):
        raise ValueError(f"the index path must not contain '?', '&' or '=': {path}")
    query = "&".join(f"{name}={value}" for name, value in server_settings(memory_mb).items())
    return f"{path}?{query}"

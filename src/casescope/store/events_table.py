"""The events table of the index: its DDL, its merge settings and the columns searches return.

Kept apart from `store.index`, which runs them: what the table is, and why each setting has
its value, changes with measurements; how the index loads and queries it does not.
"""

from __future__ import annotations

from casescope.parse.schema import INDEXED_TOKEN_CHARS

DATABASE = "casescope"
#: A token the text index leaves out: a run of ASCII letters and digits (`search_text` is
#: lower-cased) of INDEXED_TOKEN_CHARS or more; re2 counts at most 1,000 repetitions. Runs
#: with non-ASCII characters stay: matching them too tripled the cost of the expression
#: (1 s more per 1.15M events and index build, against 0.3 s), and blobs are ASCII.
LONG_TOKEN = f"[0-9a-z]{{{INDEXED_TOKEN_CHARS},}}"

EVENTS_DDL = f"""
CREATE TABLE IF NOT EXISTS {DATABASE}.events (
    case_id UInt32,
    file_id UInt64,
    seq UInt64,
    ts DateTime64(6, 'UTC'),
    event_id Nullable(UInt32),
    channel LowCardinality(String),
    provider LowCardinality(String),
    computer LowCardinality(String),
    record_id Nullable(UInt64),
    level Nullable(UInt8),
    user_name String,
    user_sid String,
    fields Map(LowCardinality(String), String),
    raw String CODEC(ZSTD(3)),
    search_text String MATERIALIZED lowerUTF8(concat(channel, ' ', provider, ' ', computer, ' ',
        user_name, ' ', user_sid, ' ', arrayStringConcat(mapValues(fields), '\n'))) CODEC(ZSTD(3)),
    INDEX file_idx file_id TYPE minmax GRANULARITY 1,
    INDEX text_idx search_text TYPE text(tokenizer = 'splitByNonAlpha',
        preprocessor = replaceRegexpAll(search_text, '{LONG_TOKEN}', ' '))
) ENGINE = MergeTree
ORDER BY (case_id, ts, file_id, seq)
"""

#: Merge settings of the events table, applied at every open (new and existing tables).
#: Searches read the first matches in time order from every part, so they slow down with the
#: number of parts and of granules: on 5M events, first pages took 45-175 ms from 22 parts of
#: ~1,100-row granules and 13-30 ms from one part of ~5,000-row granules. So merges write
#: granules of up to 8,192 rows (4 MiB: events are wide) and parts grow to 512 MiB on disk
#: (~4M events). A merge's memory grows with its blocks, not with the part it writes: 14
#: parts (5M events) merged into one within a 480 MB budget at a 449 MB peak RSS. A load
#: that meets a merge at the memory limit is retried once the merge is done (`_insert`).
#: Merges of more than 32 MiB of events (uncompressed) are vertical (one column at a time).
#: ClickHouse makes that choice from 131,072 rows and 11 non-key columns (we have 10), so a
#: merge of six 25,000-event parts of a large file was horizontal: ~200 MB, against 60-120 MB
#: vertical. Counted in bytes, not rows (16,384 rows before, ~36 MB of usual events): parts
#: of a few hundred 1 MB events merged horizontally at 570-676 MB and failed at the budget;
#: vertically, 456 MB.
#: A merge takes at most ten parts: its memory grows with the parts it reads, and merges run
#: niced (`server_settings`), so parts pile up while a large file loads and a merge of dozens
#: of them passed the 500 MB goal (1 GiB EVTX: owner 500-574 MB with ClickHouse's 100,
#: 446-485 MB with 10).
MERGE_SETTINGS = (
    "merge_max_block_size = 8192, merge_max_block_size_bytes = 4194304, "
    "max_bytes_to_merge_at_max_space_in_pool = 536870912, max_parts_to_merge_at_once = 10, "
    "vertical_merge_algorithm_min_rows_to_activate = 1, "
    "vertical_merge_algorithm_min_bytes_to_activate = 33554432, "
    "vertical_merge_algorithm_min_columns_to_activate = 1"
)

#: Columns a search returns, in order (everything but the materialised search text).
EVENT_COLUMNS = (
    "case_id",
    "file_id",
    "seq",
    "ts",
    "event_id",
    "channel",
    "provider",
    "computer",
    "record_id",
    "level",
    "user_name",
    "user_sid",
    "fields",
    "raw",
)

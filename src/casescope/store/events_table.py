"""The events table of the index: its DDL, its merge settings and the columns searches return.

Kept apart from `store.index`, which runs them: what the table is, and why each setting has
its value, changes with measurements; how the index loads and queries it does not.
"""

from __future__ import annotations

from casescope.parse.schema import INDEXED_TOKEN_CHARS
from casescope.store.index_url import DATABASE

#: The version of the events table's DDL, recorded in the table's comment
#: (`events_sql.DDL_COMMENT`): an index made by another version is refused at open, not
#: queried with SQL that does not fit it. Raise it with every change to EVENTS_DDL.
DDL_VERSION = 1
#: A token the text index leaves out: a run of ASCII letters and digits (`search_text` is
#: lower-cased) of INDEXED_TOKEN_CHARS or more; re2 counts at most 1,000 repetitions. Runs
#: with non-ASCII characters stay: matching them too tripled the cost of the expression,
#: paid on every load and merge (`bench/large_files.py`), and blobs are ASCII.
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

#: Merge settings of the events table, applied at every open, new and existing tables (why:
#: docs/decisions.md, "Merges: large parts, vertical, niced, one at a time"). Merged granules
#: hold up to 8,192 rows or 4 MiB (events are wide) and parts grow to 512 MiB on disk:
#: searches read the first matches in time order from every part and pay per part and per
#: granule (`bench/search.py`), and a merge's memory follows its blocks, not the part it
#: writes. A load that meets a merge at the memory limit is retried once the merge is done
#: (`ChdbIndex._insert`).
#: Merges of more than 32 MiB of events (uncompressed) are vertical, one column at a time:
#: ClickHouse's own rule, from 131,072 rows and 11 non-key columns (the table has 10), left
#: a large file's merges horizontal, all columns at once, and parts of very wide events
#: merged horizontally past the budget. Counted in bytes, not rows, for those wide events.
#: A merge takes at most ten parts: its memory grows with the parts it reads, and merges run
#: niced (`server_settings`), so parts pile up while a large file loads and a merge of
#: dozens of them passed the 500 MB goal (`bench/large_files.py`, the owner's peak).
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

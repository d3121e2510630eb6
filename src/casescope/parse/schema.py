"""The normalised event schema every parser produces.

One Arrow schema for every evidence format, so that Sigma, IOC hunting, segments and the
event index never care where an event came from. See docs/architecture.md ("Event schema").
"""

from __future__ import annotations

import pyarrow as pa

#: Bumped whenever a parser's output for the same input bytes may change. Segments are
#: content-addressed by (evidence sha256, PARSER_VERSION), so a bump re-parses on next use.
#: 3: events kept to 1 MiB, batches cut at 16 MiB (docs/decisions.md, "Wide events").
PARSER_VERSION = 3

#: The event index's text index leaves out runs of ASCII letters and digits of this many
#: characters or more (`store.index.LONG_TOKEN`): a blob of hex of hundreds of KB as one token
#: made the index's merges outgrow its memory budget. A whole-word search for a word this long
#: is a substring scan instead (`store.query_sql`); no IOC or analyst's word is so long.
INDEXED_TOKEN_CHARS = 1000

FIELDS_TYPE = pa.map_(pa.string(), pa.string())

EVENT_SCHEMA = pa.schema(
    [
        pa.field("seq", pa.uint64(), nullable=False),  # 0-based ordinal within the file
        pa.field("ts", pa.timestamp("us", tz="UTC")),  # event time, UTC; null when unknown
        pa.field("event_id", pa.uint32()),  # EVTX EventID (Qualifiers stripped)
        pa.field("channel", pa.string(), nullable=False),  # "" when absent
        pa.field("provider", pa.string(), nullable=False),
        pa.field("computer", pa.string(), nullable=False),
        pa.field("record_id", pa.uint64()),  # EVTX EventRecordID
        pa.field("level", pa.uint8()),
        pa.field("user_name", pa.string(), nullable=False),
        pa.field("user_sid", pa.string(), nullable=False),
        pa.field("fields", FIELDS_TYPE, nullable=False),  # EventData/UserData or flat record
        pa.field("raw", pa.string(), nullable=False),  # the original event as JSON
    ]
)

#: Core columns, in schema order; "fields" and "raw" hold the rest of the event.
CORE_COLUMNS = tuple(EVENT_SCHEMA.names)

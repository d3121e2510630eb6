"""One batch of events as plain column lists; parsers append, `flush` builds the RecordBatch.

Parsers append to the public lists directly (the hot loops bind `append` once), then call
`end_event()`. Timestamps are collected as strings and parsed for the whole batch at once
(`timestamps.parse_timestamps`); `flush` clears the lists in place, so bound methods stay valid.
"""

from __future__ import annotations

import logging

import pyarrow as pa

from casescope.parse.report import ParseReport
from casescope.parse.schema import EVENT_SCHEMA, FIELDS_TYPE
from casescope.parse.timestamps import parse_timestamps

logger = logging.getLogger(__name__)

UINT8_MAX = 2**8 - 1
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1

#: A batch is also cut before an event that would take its raw records past this many
#: characters (NDJSON: bytes of its lines), whatever its row count; an event larger than
#: that makes a batch of its own. A batch is one row group of the segment, and both
#: the worker building it and the index owner loading it hold it whole: a batch of a few very
#: wide events took the worker to gigabytes and could not be loaded within the owner's
#: budget (docs/decisions.md, "Wide events"). Usual events (~1.1 KB) fill 10,000-event
#: batches long before this.
BATCH_RAW_CHARS = 16 * 2**20
#: A batch of wide events (more than WIDE_EVENT_CHARS of raw record each, on average) is cut
#: at WIDE_BATCH_RAW_CHARS instead: each such event is held several times over (raw record,
#: field values, the index's search text), so batches of 16 MiB of them took the worker and
#: the owner close to or past 500 MB; 4 MiB keeps both well under it (docs/decisions.md,
#: "Wide events").
WIDE_BATCH_RAW_CHARS = 4 * 2**20
WIDE_EVENT_CHARS = 16 * 2**10


def batch_full(raw_chars: int, events: int) -> bool:
    """Whether a batch of `events` events whose raw records hold `raw_chars` characters is
    past its bound (parsers ask before adding an event, counting it in)."""
    return raw_chars > BATCH_RAW_CHARS or (
        raw_chars > WIDE_BATCH_RAW_CHARS and raw_chars > WIDE_EVENT_CHARS * events
    )


#: The most characters of one event that are kept: of its raw record, of its field values
#: together, and of each core column. Lines are read up to 16 MiB (`max_line_bytes`), but
#: every copy of an event downstream is held whole: a part of the index holding events of
#: many MB could not be merged within the owner's budget, and a lightweight DELETE then
#: waited for that merge for ever (docs/decisions.md, "Wide events"). The parser warns, with
#: the line; the evidence file keeps the event whole.
EVENT_CHARS = 2**20


def capped_warning(size: int) -> str:
    """What a parser warns (after the record's place) for an event kept to EVENT_CHARS."""
    return (
        f"an event of {size:,} characters, kept to the first {EVENT_CHARS:,} of its raw record "
        "and of its field values (the evidence file holds it whole)"
    )


class EventColumns:
    """Column lists for one batch of EVENT_SCHEMA rows; `seq` continues across flushes."""

    def __init__(self, report: ParseReport) -> None:
        self.report = report
        self.next_seq = 0
        self.ts: list[str | None] = []
        self.event_id: list[int | None] = []
        self.channel: list[str] = []
        self.provider: list[str] = []
        self.computer: list[str] = []
        self.record_id: list[int | None] = []
        self.level: list[int | None] = []
        self.user_name: list[str] = []
        self.user_sid: list[str] = []
        self.keys: list[str] = []
        self.values: list[str | int] = []  # ints (EVTX fast path) become str in flush
        self.offsets: list[int] = [0]
        self.raw: list[str] = []
        #: Characters of raw record the batch holds, as counted by the parser after each
        #: event (capped events count EVENT_CHARS); `flush` starts it again.
        self.raw_chars = 0

    def __len__(self) -> int:
        return len(self.raw)

    def full_before(self, chars: int) -> bool:
        """Whether a batch with events must be flushed before one of `chars` raw characters
        is added: it would pass its bound in bytes (`batch_full`)."""
        total = self.raw_chars + chars  # below WIDE_BATCH_RAW_CHARS no bound is near
        return total > WIDE_BATCH_RAW_CHARS and bool(self.raw) and batch_full(total, len(self) + 1)

    def end_event(self) -> None:
        """Close the current event's `fields` (its keys/values were appended)."""
        self.offsets.append(len(self.keys))

    def cap_last(self) -> int:
        """Keep the last event within EVENT_CHARS (`end_event` and its raw record done);
        the characters dropped. Parsers call it only for events whose raw record is over
        EVENT_CHARS: the raw record holds every value."""
        dropped = 0
        raw = self.raw[-1]
        if len(raw) > EVENT_CHARS:
            self.raw[-1] = raw[:EVENT_CHARS]
            dropped += len(raw) - EVENT_CHARS
        room = EVENT_CHARS
        values = self.values
        for n in range(self.offsets[-2], self.offsets[-1]):
            value = values[n]
            if type(value) is str:
                if len(value) > room:
                    values[n] = value[:room]
                    dropped += len(value) - room
                room -= len(values[n])  # type: ignore[arg-type]
        for column in (self.channel, self.provider, self.computer, self.user_name, self.user_sid):
            if len(column[-1]) > EVENT_CHARS:
                dropped += len(column[-1]) - EVENT_CHARS
                column[-1] = column[-1][:EVENT_CHARS]
        return dropped

    def flush(self) -> pa.RecordBatch:
        """The batch so far as a RecordBatch of EVENT_SCHEMA; the lists start empty again."""
        rows = len(self.raw)
        ts = parse_timestamps(self.ts)
        if ts.failed:
            self.report.warn(f"{ts.failed} timestamp(s) not understood, e.g. {ts.example!r:.60}")
        columns = [
            pa.array(range(self.next_seq, self.next_seq + rows), pa.uint64()),
            ts.values,
            _uint_array(self.event_id, pa.uint32(), UINT32_MAX),
            pa.array(self.channel, pa.string()),
            pa.array(self.provider, pa.string()),
            pa.array(self.computer, pa.string()),
            _uint_array(self.record_id, pa.uint64(), UINT64_MAX),
            _uint_array(self.level, pa.uint8(), UINT8_MAX),
            pa.array(self.user_name, pa.string()),
            pa.array(self.user_sid, pa.string()),
            pa.MapArray.from_arrays(
                pa.array(self.offsets, pa.int32()),
                pa.array(self.keys, pa.string()),
                pa.array(list(map(str, self.values)), pa.string()),
                type=FIELDS_TYPE,
            ),
            pa.array(self.raw, pa.string()),
        ]
        self.next_seq += rows
        self.raw_chars = 0
        self._clear()
        return pa.RecordBatch.from_arrays(columns, schema=EVENT_SCHEMA)

    def _clear(self) -> None:
        for column in (self.ts, self.event_id, self.channel, self.provider, self.computer):
            column.clear()
        for column in (self.record_id, self.level, self.user_name, self.user_sid):
            column.clear()
        for column in (self.keys, self.values, self.raw):
            column.clear()
        del self.offsets[1:]
        self.offsets[0] = 0


def _uint_array(values: list[int | None], type_: pa.DataType, limit: int) -> pa.Array:
    """Values that do not fit the column (negative, too large) become null."""
    try:
        return pa.array(values, type_)
    except (pa.ArrowInvalid, OverflowError, TypeError):
        fitting = [v if type(v) is int and 0 <= v <= limit else None for v in values]
        return pa.array(fitting, type_)


def as_uint(value: object, limit: int) -> int | None:
    """An unsigned integer from an int or a decimal/hex string (else None)."""
    if type(value) is int:
        return value if 0 <= value <= limit else None
    if isinstance(value, str):
        text = value.strip()
        try:
            number = int(text, 16) if text[:2].lower() == "0x" else int(text)
        except ValueError:
            try:
                number = int(float(text))
            except (ValueError, OverflowError):
                return None
        return number if 0 <= number <= limit else None
    if isinstance(value, float) and value.is_integer():
        return as_uint(int(value), limit)
    return None

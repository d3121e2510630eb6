"""Search and export over the event index, using the query language of `store.query`."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from casescope.store.index import DATABASE, EVENT_COLUMNS, EventIndex
from casescope.store.query import compile_query

ORDER = "ts, file_id, seq"
#: Export order: time and location first, then the rest of the indexed columns.
_LEADING = ("ts", "file_id", "seq")
EXPORT_COLUMNS = (*_LEADING, *(c for c in EVENT_COLUMNS if c not in (*_LEADING, "case_id")))
#: A CSV cell starting with one of these is run as a formula by spreadsheet programs.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: Rows per Arrow batch of an export: ~10k rows of raw JSON keep the owner's memory bounded.
EXPORT_BATCH_ROWS = 10_000


@dataclass(frozen=True)
class SearchRequest:
    case_id: int
    query: str = ""
    start: datetime | None = None
    end: datetime | None = None
    limit: int = 100
    offset: int = 0
    #: Restrict to these events, (file id, seq) pairs, e.g. those with a Sigma detection;
    #: None means no restriction.
    only_events: tuple[tuple[int, int], ...] | None = None


def narrow_events(
    current: tuple[tuple[int, int], ...] | None, events: tuple[tuple[int, int], ...]
) -> tuple[tuple[int, int], ...]:
    """`only_events` further restricted to `events` (None, no restriction yet, becomes them)."""
    if current is None:
        return events
    keep = set(events)
    return tuple(event for event in current if event in keep)


#: (file_id, seq) as one UInt64 for set membership: 24 bits of file id, 40 of event number.
_EVENT_KEY = "bitOr(bitShiftLeft(toUInt64(file_id), 40), seq)"


def event_key(file_id: int, seq: int) -> int:
    """The `_EVENT_KEY` of one event, computed on this side."""
    return (file_id << 40) | seq


def _only_events_clause(events: tuple[tuple[int, int], ...]) -> tuple[str, dict[str, object]]:
    if not events:
        return "0", {}
    params: dict[str, object] = {
        "only_files": sorted({file_id for file_id, _ in events}),
        "only_keys": [event_key(file_id, seq) for file_id, seq in events],
    }
    clause = (
        "file_id IN (SELECT arrayJoin({only_files:Array(UInt64)})) AND "
        f"{_EVENT_KEY} IN (SELECT arrayJoin({{only_keys:Array(UInt64)}}))"
    )
    return clause, params


def build_where(request: SearchRequest) -> tuple[str, dict[str, object]]:
    """The WHERE clause and parameters for a request (user text only ever in parameters)."""
    compiled = compile_query(request.query)
    clauses = ["case_id = {case_id:UInt32}", f"({compiled.sql})"]
    params: dict[str, object] = {"case_id": request.case_id, **compiled.params}
    if request.start is not None:
        clauses.append("ts >= {t_start:DateTime64(6, 'UTC')}")
        params["t_start"] = request.start.strftime("%Y-%m-%d %H:%M:%S.%f")
    if request.end is not None:
        clauses.append("ts < {t_end:DateTime64(6, 'UTC')}")
        params["t_end"] = request.end.strftime("%Y-%m-%d %H:%M:%S.%f")
    if request.only_events is not None:
        clause, extra = _only_events_clause(request.only_events)
        clauses.append(clause)
        params.update(extra)
    return " AND ".join(clauses), params


def search(index: EventIndex, request: SearchRequest) -> tuple[list[dict[str, Any]], int]:
    """One page of matching events (oldest first) and the total number of matches."""
    where, params = build_where(request)
    table = f"{DATABASE}.events"
    total_rows = index.query_rows(f"SELECT count() AS n FROM {table} WHERE {where}", params)
    total = int(total_rows[0]["n"]) if total_rows else 0
    params = {**params, "lim": request.limit, "off": request.offset}
    rows = index.query_rows(
        f"SELECT {', '.join(EVENT_COLUMNS)} FROM {table} WHERE {where} "
        f"ORDER BY {ORDER} LIMIT {{lim:UInt64}} OFFSET {{off:UInt64}}",
        params,
    )
    return rows, total


def export_batches(index: EventIndex, request: SearchRequest) -> Iterator[pa.RecordBatch]:
    """Every matching event, streamed in order (no row cap, bounded memory)."""
    where, params = build_where(request)
    sql = (
        f"SELECT {', '.join(EXPORT_COLUMNS)} FROM {DATABASE}.events WHERE {where} ORDER BY {ORDER}"
    )
    yield from index.stream_batches(sql, params, rows_per_batch=EXPORT_BATCH_ROWS)


def neutralise_cell(value: str) -> str:
    """Defuse spreadsheet formula injection (OWASP): prefix a quote to formula-like cells."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, list):  # map column arrives as a list of (key, value) pairs
        return orjson.dumps(dict(value)).decode()
    return str(value)


def _records(batch: pa.RecordBatch, slice_rows: int = 1000) -> Iterator[dict[str, object]]:
    """The batch's rows as dicts, converted 1,000 at a time (not a whole batch at once)."""
    for start in range(0, batch.num_rows, slice_rows):
        yield from batch.slice(start, slice_rows).to_pylist()


def write_csv(batches: Iterator[pa.RecordBatch], out: io.TextIOBase) -> int:
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for batch in batches:
        for record in _records(batch):
            writer.writerow([neutralise_cell(_cell(record[c])) for c in EXPORT_COLUMNS])
            count += 1
    return count


def write_jsonl(batches: Iterator[pa.RecordBatch], out: io.BufferedIOBase) -> int:
    count = 0
    for batch in batches:
        for record in _records(batch):
            record["fields"] = dict(record["fields"] or [])
            ts = record["ts"]
            record["ts"] = _cell(ts)
            out.write(orjson.dumps(record) + b"\n")
            count += 1
    return count

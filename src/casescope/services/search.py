"""Search and export over the event index, using the query language of `store.query`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, BinaryIO

import pyarrow as pa

from casescope.config import Settings
from casescope.store.events_table import DATABASE, EVENT_COLUMNS
from casescope.store.index import SORTED_READ, EventIndex
from casescope.store.query import QueryLimits, compile_query
from casescope.store.summary import summary_sql

ORDER = "ts, file_id, seq"
#: Export order: time and location first, then the rest of the indexed columns, with the
#: event's one-line `summary` (store/summary.py) before its fields.
_LEADING = ("ts", "file_id", "seq")
_INDEXED = tuple(c for c in EVENT_COLUMNS if c not in (*_LEADING, "case_id"))
EXPORT_COLUMNS = (
    *_LEADING,
    *_INDEXED[: _INDEXED.index("fields")],
    "summary",
    *_INDEXED[_INDEXED.index("fields") :],
)
#: A CSV cell starting with one of these is run as a formula by spreadsheet programs.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: Rows per Arrow batch of an export, handed on as ClickHouse's blocks (`STREAM_SETTINGS`)
#: come, never gathered into larger batches (10,000-row batches: 584 MB peak over 1M
#: exported events of ~1.1 KB, 478 MB with these).
EXPORT_BATCH_ROWS = 1_024


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


#: How ClickHouse writes exported lines: JSON numbers unquoted (UInt64 too) and `/` as is;
#: CSV nulls as empty cells and CRLF line ends (RFC 4180).
EXPORT_LINE_SETTINGS = (
    "output_format_json_quote_64bit_integers = 0, output_format_json_escape_forward_slashes = 0, "
    "format_csv_null_representation = '', output_format_csv_crlf_end_of_line = 1"
)
_ISO_TS = "formatDateTime(ts, '%Y-%m-%dT%H:%i:%S.%fZ')"
#: The JSON object of an exported event: its keys and types, in EXPORT_COLUMNS order.
_JSON_TYPE = (
    "Tuple(ts String, file_id UInt64, seq UInt64, event_id Nullable(UInt32), channel String, "
    "provider String, computer String, record_id Nullable(UInt64), level Nullable(UInt8), "
    "user_name String, user_sid String, summary String, fields Map(String, String), raw String)"
)
_TEXT_COLUMNS = ("channel", "provider", "computer", "user_name", "user_sid", "summary", "raw")
#: FORMULA_PREFIXES as a ClickHouse string literal of a regular expression (`-` last in the
#: class; a tab and a CR written as the literal's escapes).
_FORMULA_RE = (
    "'^["
    + "".join(sorted(FORMULA_PREFIXES, key="-".__eq__)).replace("\t", "\\t").replace("\r", "\\r")
    + "]'"
)


def _neutralised_sql(expr: str) -> str:
    """`expr` with a quote before a leading formula character: `neutralise_cell` in SQL."""
    return f"if(match({expr}, {_FORMULA_RE}), concat('\\'', {expr}), {expr})"


def export_line_sql(fmt: ExportFormat) -> str:
    """One exported event as a whole line of CSV or JSON text, written by ClickHouse (rows
    turned into Python objects one by one took minutes for 5M events). `summary` is the
    name export_select gives the event's summary."""
    if fmt is ExportFormat.JSONL:
        values = ", ".join(_ISO_TS if c == "ts" else c for c in EXPORT_COLUMNS)
        return f"concat(toJSONString(CAST(tuple({values}), '{_JSON_TYPE}')), '\\n')"
    cells = []
    for column in EXPORT_COLUMNS:
        if column == "ts":
            cells.append(_ISO_TS)
        elif column == "fields":
            cells.append(_neutralised_sql("toJSONString(fields)"))
        else:
            cells.append(_neutralised_sql(column) if column in _TEXT_COLUMNS else column)
    return f"formatRow('CSV', {', '.join(cells)})"


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
    #: How long `query` may be (`query_limits`).
    limits: QueryLimits = field(default_factory=QueryLimits)


def query_limits(settings: Settings) -> QueryLimits:
    """The bounds of a search query's text (CASESCOPE_QUERY_MAX_CHARS / _TERMS)."""
    return QueryLimits(settings.query_max_chars, settings.query_max_terms)


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
    compiled = compile_query(request.query, limits=request.limits)
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
        settings="" if index.reads_in_order() else SORTED_READ,
    )
    return rows, total


def export_select(fmt: ExportFormat) -> str:
    """SELECT … FROM the events table, for the keyset chunks of exports (`export_chunks`)."""
    # the summary once, by name: written into each CSV cell expression (three times, for
    # the formula check) it made a query larger than ClickHouse's max_query_size
    return (
        f"WITH ({summary_sql()}) AS summary "
        f"SELECT ts, file_id, seq, {export_line_sql(fmt)} AS line FROM {DATABASE}.events"
    )


def neutralise_cell(value: str) -> str:
    """Defuse spreadsheet formula injection (OWASP): prefix a quote to formula-like cells."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def export_header(fmt: ExportFormat) -> bytes:
    """What an export starts with: the CSV header line; nothing for JSONL."""
    return (",".join(EXPORT_COLUMNS) + "\r\n").encode() if fmt is ExportFormat.CSV else b""


def export_lines(batch: pa.RecordBatch) -> memoryview:
    """The batch's exported lines end to end, without a copy: the `line` column's data
    buffer holds them one after the other (each ends with its line break), so the bytes
    between the first and the last offset are the export. A copy of each 10,000-event chunk
    (~20-40 MB of CSV on ~1.1 KB events) was two: Arrow's join and its Python bytes."""
    lines = batch.column("line")
    if lines.null_count:
        raise ValueError("exported lines are never null (export_line_sql)")
    if not len(lines):
        return memoryview(b"")
    _, offsets, data = lines.buffers()
    large = pa.types.is_large_binary(lines.type) or pa.types.is_large_string(lines.type)
    bounds = memoryview(offsets).cast("q" if large else "i")
    return memoryview(data)[bounds[lines.offset] : bounds[lines.offset + len(lines)]]


def write_export(batches: Iterator[pa.RecordBatch], fmt: ExportFormat, out: BinaryIO) -> int:
    """Write an export (`event_search.export_chunks`) to `out`; how many events."""
    out.write(export_header(fmt))
    count = 0
    for batch in batches:
        out.write(export_lines(batch))
        count += batch.num_rows
    return count

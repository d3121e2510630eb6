"""The SQL of an export: each matching event as a whole line of CSV or JSON, written by
ClickHouse, read in keyset chunks (`services.event_search.export_chunks` decides their size).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

import pyarrow as pa

from casescope.store.cells import FORMULA_PREFIXES
from casescope.store.event_queries import Keyset, Ordering, after_sql, order_by_sql, sorted_read
from casescope.store.events_table import DATABASE, EVENT_COLUMNS
from casescope.store.query_bounds import QueryKind
from casescope.store.summary import summary_sql
from casescope.store.where import Where

if TYPE_CHECKING:
    from casescope.store.index import EventIndex


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


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
#: Rows per Arrow batch of an export, handed on as ClickHouse's blocks (`STREAM_SETTINGS`)
#: come, never gathered into larger batches (10,000-row batches: 584 MB peak over 1M
#: exported events of ~1.1 KB, 478 MB with these).
EXPORT_BATCH_ROWS = 1_024

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


def export_select(fmt: ExportFormat) -> str:
    """SELECT … FROM the events table, for the keyset chunks of exports (`export_chunk`)."""
    # the summary once, by name: written into each CSV cell expression (three times, for
    # the formula check) it made a query larger than ClickHouse's max_query_size
    return (
        f"WITH ({summary_sql()}) AS summary "
        f"SELECT ts, file_id, seq, {export_line_sql(fmt)} AS line FROM {DATABASE}.events"
    )


def export_chunk(
    index: EventIndex, where: Where, fmt: ExportFormat, after: Keyset | None, rows: int
) -> list[pa.RecordBatch]:
    """The next `rows` matches of `where` after `after` in time order, as exported: batches
    of `ts`, `file_id`, `seq` (the next chunk's key) and `line`, the event's line."""
    params = where.with_params(lim=rows)
    ordering = Ordering()
    sql = (
        f"{export_select(fmt)} WHERE {where.sql} AND {after_sql(after, ordering, params)} "
        f"ORDER BY {order_by_sql(ordering)} LIMIT {{lim:UInt64}}"
    )
    settings = EXPORT_LINE_SETTINGS
    if read := sorted_read(index):  # slower (each chunk sorts), but within the budget
        settings += f", {read}"
    stream = index.stream_batches(  # bounded by CASESCOPE_LONG_QUERY_TIMEOUT_SECONDS
        sql, params, rows_per_batch=EXPORT_BATCH_ROWS, settings=settings, kind=QueryKind.LONG
    )
    return [b for b in stream if b.num_rows]

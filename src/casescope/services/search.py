"""Search and export over the event index, using the query language of `store.query`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO

import pyarrow as pa

from casescope.config import Settings
from casescope.store.event_queries import count_rows, offset_rows
from casescope.store.exports import EXPORT_COLUMNS, ExportFormat
from casescope.store.query import MarkLookup, QueryLimits, compile_query
from casescope.store.where import EventKey, Where, among_events, search_where

if TYPE_CHECKING:
    from casescope.store.index import EventIndex


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
    only_events: tuple[EventKey, ...] | None = None
    #: How long `query` may be (`query_limits`).
    limits: QueryLimits = field(default_factory=QueryLimits)
    #: What answers the query's mark terms (`tag:x`, `is:starred`, `note:x`) in the case:
    #: `services.mark_search.mark_lookup`; None refuses a query that has one.
    marks: MarkLookup | None = None


def query_limits(settings: Settings) -> QueryLimits:
    """The bounds of a search query's text (CASESCOPE_QUERY_MAX_CHARS / _TERMS)."""
    return QueryLimits(settings.query_max_chars, settings.query_max_terms)


def narrow_events(
    current: tuple[EventKey, ...] | None, events: tuple[EventKey, ...]
) -> tuple[EventKey, ...]:
    """`only_events` further restricted to `events` (None, no restriction yet, becomes them)."""
    if current is None:
        return events
    keep = set(events)
    return tuple(event for event in current if event in keep)


def build_where(request: SearchRequest) -> Where:
    """The events a request matches (user text only ever in parameters)."""
    compiled = compile_query(request.query, limits=request.limits, marks=request.marks)
    where = search_where(request.case_id, compiled, request.start, request.end)
    if request.only_events is not None:
        where = where.and_(among_events(request.only_events))
    return where


def search(index: EventIndex, request: SearchRequest) -> tuple[list[dict[str, Any]], int]:
    """One page of matching events (oldest first) and the total number of matches."""
    where = build_where(request)
    total = count_rows(index, where)
    return offset_rows(index, where, request.limit, request.offset), total


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

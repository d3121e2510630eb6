"""Search for the web app: filters, keyset pages deep into a result set, event detail, export.

Pages use keyset pagination on the index's sort key (ts, file_id, seq): page 10,000 costs what
page 1 does, where OFFSET would read and drop every earlier row. A cursor is the key of the
last row shown. Other sorts (computer, channel, provider, event id, level) page on
(that column, ts, file_id, seq): the event key breaks ties, so pages stay stable and complete.
Exports reuse the same keyset walk in chunks, so the single chDB session is never held for
longer than one chunk.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson
import pyarrow as pa

from casescope.detect.levels import SigmaLevel
from casescope.errors import CasescopeError, IndexMemoryError
from casescope.model.db import Database
from casescope.model.users import EventMark
from casescope.services.detections import DetectionFilter, detected_events
from casescope.services.ioc_hits import HitFilter, hit_events
from casescope.services.marks import marked_events
from casescope.services.search import (
    EXPORT_BATCH_ROWS,
    EXPORT_LINE_SETTINGS,
    ExportFormat,
    SearchRequest,
    build_where,
    event_key,
    export_lines,
    export_select,
)
from casescope.store.events_table import DATABASE, EVENT_COLUMNS
from casescope.store.index import SORTED_READ, EventIndex
from casescope.store.query_bounds import QueryKind

TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
#: Most events per query of a chunked export (the index is held for one query at a time).
EXPORT_CHUNK_ROWS = 10_000
#: A chunk's exported lines, about: its rows follow the width of the last chunk's events.
#: chDB builds a chunk as one block (its lazy materialisation reads the chunk's rows at once)
#: and needs several times the lines' bytes to do so: 10,000 events of ~4 KB (40 MB of CSV)
#: needed 200-300 MB of the index's budget, 5,000 of them 100-150 MB, 2,500 50-100 MB.
EXPORT_CHUNK_BYTES = 16 * 2**20
#: The first chunk's rows (a quick first answer; later chunks at most double).
EXPORT_FIRST_CHUNK_ROWS = 1_000
#: The fewest rows a chunk is retried with after it outgrew the index's budget.
EXPORT_MIN_CHUNK_ROWS = 100
MAX_PAGE = 500
#: Matches a search counts exactly before it answers "at least this many" (like
#: Elasticsearch's `track_total_hits`): a count stops reading once it has passed this.
#: `CASESCOPE_SEARCH_COUNT_LIMIT` sets it for the web app; None counts every match.
COUNT_LIMIT = 10_000
#: At most this many matches (counted exactly) are "sparse": their page is found by reading
#: the matches and sorting them, not by reading the index in time order until the page is
#: full, which for rare matches walks most of every part (5M events: 70-160 ms against
#: 150-220 ms). Many matches fill a page early in time order, so they keep it.
SPARSE_MATCHES = 10_000
#: Matches whose event-field values a facet counts (the first ones in the index's order):
#: past this, the counts are those of the sample, and the result says so. Column facets
#: are always exact.
FACET_SAMPLE = 10_000


@dataclass(frozen=True)
class EventFilters:
    """The search form's filters beyond the query text and time range."""

    has_detection: bool = False
    min_level: SigmaLevel | None = None
    has_ioc_hit: bool = False
    channel: str = ""
    computer: str = ""
    file_id: int | None = None
    show_hidden: bool = False
    starred_only: bool = False
    rule_uid: str | None = None
    ioc_id: int | None = None


class SortKey(StrEnum):
    """What results can be sorted by; every sort ends with the event key (ts, file_id, seq)."""

    TIME = "time"
    COMPUTER = "computer"
    CHANNEL = "channel"
    PROVIDER = "provider"
    EVENT_ID = "event_id"
    LEVEL = "level"


#: The SQL expression and parameter type of each sort other than time. Nullable columns sort
#: as -1 when missing (a NULL would drop out of the keyset comparison).
_SORT_SQL: dict[SortKey, tuple[str, str]] = {
    SortKey.COMPUTER: ("computer", "String"),
    SortKey.CHANNEL: ("channel", "String"),
    SortKey.PROVIDER: ("provider", "String"),
    SortKey.EVENT_ID: ("ifNull(toInt64(event_id), -1)", "Int64"),
    SortKey.LEVEL: ("ifNull(toInt64(level), -1)", "Int64"),
}


def sort_value(row: dict[str, Any], sort: SortKey) -> str | int | None:
    """The row's value of the sort column, as `_SORT_SQL` computes it."""
    if sort is SortKey.TIME:
        return None
    value = row[sort.value]
    if _SORT_SQL[sort][1] == "Int64":
        return -1 if value is None else int(value)
    return str(value)


@dataclass(frozen=True)
class Cursor:
    ts: str
    file_id: int
    seq: int
    value: str | int | None = None  # the sort column's value (None for time order)

    def encode(self) -> str:
        data = [self.ts, self.file_id, self.seq, self.value]
        return base64.urlsafe_b64encode(orjson.dumps(data)).decode()

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            ts, file_id, seq, value = orjson.loads(base64.urlsafe_b64decode(text.encode()))
            datetime.strptime(ts, TS_FORMAT)
            if not isinstance(value, str | int | None) or isinstance(value, bool):
                raise ValueError(value)
            return cls(ts, int(file_id), int(seq), value)
        except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
            raise CasescopeError("invalid page cursor") from None


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    #: The number of matches, or (`total_exact` false) the count limit that they exceed.
    total: int
    next_cursor: str | None
    total_exact: bool = True
    #: The key of the page's first row when rows come before it (pass with `backward`).
    prev_cursor: str | None = None


def _intersect(
    current: tuple[tuple[int, int], ...] | None, new: tuple[tuple[int, int], ...]
) -> tuple[tuple[int, int], ...]:
    return new if current is None else tuple(sorted(set(current) & set(new)))


def resolve_request(db: Database, request: SearchRequest, filters: EventFilters) -> SearchRequest:
    """Turn DB-side filters (detections, IOC hits, stars) into the request's event set."""
    only = request.only_events
    if filters.has_detection or filters.min_level or filters.rule_uid:
        wanted = DetectionFilter(request.case_id, filters.min_level, filters.rule_uid)
        only = _intersect(only, detected_events(db, wanted))
    if filters.has_ioc_hit or filters.ioc_id is not None:
        ids = () if filters.ioc_id is None else (filters.ioc_id,)
        only = _intersect(only, hit_events(db, HitFilter(request.case_id, ioc_ids=ids)))
    if filters.starred_only:
        only = _intersect(only, marked_events(db, request.case_id, EventMark.STAR))
    return replace(request, only_events=only)


def build_filtered_where(
    db: Database, request: SearchRequest, filters: EventFilters
) -> tuple[str, dict[str, object]]:
    """The WHERE of `services.search.build_where` plus the web filters (all parameterised)."""
    where, params = build_where(resolve_request(db, request, filters))
    clauses = [where]
    if filters.channel:
        clauses.append("channel = {w_channel:String}")
        params["w_channel"] = filters.channel
    if filters.computer:
        clauses.append("computer = {w_computer:String}")
        params["w_computer"] = filters.computer
    if filters.file_id is not None:
        clauses.append("file_id = {w_file:UInt64}")
        params["w_file"] = filters.file_id
    if not filters.show_hidden:
        hidden = marked_events(db, request.case_id, EventMark.HIDDEN)
        if hidden:
            clauses.append(
                "bitOr(bitShiftLeft(toUInt64(file_id), 40), seq) "
                "NOT IN (SELECT arrayJoin({w_hidden:Array(UInt64)}))"
            )
            params["w_hidden"] = [event_key(f, s) for f, s in hidden]
    return " AND ".join(clauses), params


def _after(
    cursor: Cursor | None, descending: bool, params: dict[str, object], sort: SortKey
) -> str:
    if cursor is None:
        return "1"
    params.update(k_ts=cursor.ts, k_file=cursor.file_id, k_seq=cursor.seq)
    op, bound = ("<", "<=") if descending else (">", ">=")
    key = "{k_ts:DateTime64(6, 'UTC')}, {k_file:UInt64}, {k_seq:UInt64}"
    if sort is SortKey.TIME:
        # the plain `ts` bound lets ClickHouse skip granules by the primary key
        return f"ts {bound} {{k_ts:DateTime64(6, 'UTC')}} AND (ts, file_id, seq) {op} ({key})"
    expr, kind = _SORT_SQL[sort]
    if cursor.value is None or isinstance(cursor.value, str) != (kind == "String"):
        raise CasescopeError("invalid page cursor for this sort")
    params["k_val"] = cursor.value
    return f"({expr}, ts, file_id, seq) {op} ({{k_val:{kind}}}, {key})"


def _order(descending: bool, sort: SortKey = SortKey.TIME) -> str:
    direction = "DESC" if descending else "ASC"
    lead = "" if sort is SortKey.TIME else f"{_SORT_SQL[sort][0]} {direction}, "
    return f"{lead}ts {direction}, file_id {direction}, seq {direction}"


#: What a result page holds of each event: everything but the original record, which only
#: the event's own view shows (`get_event`). Fetching `raw` for a page of 50 cost 25-100 ms
#: of a 130-270 ms first page on 5M events (`bench/search.py`).
PAGE_COLUMNS = tuple(c for c in EVENT_COLUMNS if c != "raw")


@dataclass(frozen=True)
class PageSpec:
    """Which page: after `cursor`, `limit` rows, in this sort and direction; `raw` adds
    each event's original record to its row. `backward` asks for the rows just before
    `cursor` instead (the previous page; without a cursor, the last page), still shown in
    the sort's direction: the same keyset read with the direction reversed."""

    cursor: Cursor | None = None
    limit: int = 50
    sort: SortKey = SortKey.TIME
    descending: bool = False
    raw: bool = False
    backward: bool = False


def search_page(
    index: EventIndex,
    where: tuple[str, dict[str, object]],
    spec: PageSpec,
    *,
    with_total: bool = True,
    count_limit: int | None = COUNT_LIMIT,
) -> Page:
    """One page after `spec.cursor` and (optionally) the number of matches, counted exactly
    up to `count_limit` (None: all of them)."""
    sql_where, base = where
    limit = max(1, min(spec.limit, MAX_PAGE))
    table = f"{DATABASE}.events"
    total, exact = -1, True
    if with_total:
        total, exact = count_matches(index, where, count_limit)
    params = {**base, "lim": limit + 1}
    reading = spec.descending != spec.backward  # the direction the index is read in
    after = _after(spec.cursor, reading, params, spec.sort)
    sparse = with_total and exact and total <= SPARSE_MATCHES
    columns = EVENT_COLUMNS if spec.raw else PAGE_COLUMNS
    rows = index.query_rows(
        f"SELECT {', '.join(columns)} FROM {table} WHERE {sql_where} AND {after} "
        f"ORDER BY {_order(reading, spec.sort)} LIMIT {{lim:UInt64}}",
        params,
        settings=SORTED_READ if sparse or not index.reads_in_order() else "",
    )
    more = len(rows) > limit
    rows = rows[:limit]
    came_from = spec.cursor is not None and bool(rows)  # rows lie beyond the cursor
    if spec.backward:
        rows.reverse()
        return Page(rows, total, _key(rows, -1, came_from, spec), exact, _key(rows, 0, more, spec))
    return Page(rows, total, _key(rows, -1, more, spec), exact, _key(rows, 0, came_from, spec))


def _key(rows: list[dict[str, Any]], at: int, wanted: bool, spec: PageSpec) -> str | None:
    """The cursor of `rows[at]` when `wanted` (there are rows beyond it), else None."""
    if not wanted or not rows:
        return None
    row = rows[at]
    key = Cursor(
        _ts_text(row["ts"]), int(row["file_id"]), int(row["seq"]), sort_value(row, spec.sort)
    )
    return key.encode()


def count_matches(
    index: EventIndex, where: tuple[str, dict[str, object]], limit: int | None = COUNT_LIMIT
) -> tuple[int, bool]:
    """The number of matches and True, or `limit` and False when there are more than it.

    A bounded count reads matches only until it has `limit + 1` of them: for a common term
    that is a small part of the case, where counting every match reads all of it.
    """
    sql_where, base = where
    table = f"{DATABASE}.events"
    if limit is None:
        rows = index.query_rows(f"SELECT count() AS n FROM {table} WHERE {sql_where}", base)
        return (int(rows[0]["n"]) if rows else 0), True
    rows = index.query_rows(
        f"SELECT count() AS n FROM (SELECT 1 FROM {table} WHERE {sql_where} "
        "LIMIT {count_lim:UInt64})",
        {**base, "count_lim": limit + 1},
    )
    found = int(rows[0]["n"]) if rows else 0
    return (limit, False) if found > limit else (found, True)


def _ts_text(value: object) -> str:
    if isinstance(value, datetime):
        return value.strftime(TS_FORMAT)
    text = str(value)
    return text if "." in text else text + ".000000"


#: Columns that `top_values` counts directly; any other name is an event field.
FACET_COLUMNS = ("computer", "channel", "provider", "event_id", "level", "user_name")


@dataclass(frozen=True)
class Facet:
    """Top values with their counts; `sample` is the number of matches counted when the
    counts come from a sample of the matches (None: from all of them)."""

    values: list[dict[str, Any]]
    sample: int | None = None


def top_values(
    index: EventIndex,
    where: tuple[str, dict[str, object]],
    field: str,
    limit: int = 20,
    sample: int | None = FACET_SAMPLE,
) -> Facet:
    """The most frequent values of a column or event field among the matches, with counts.

    Columns are counted over all matches. An event field is read from the `fields` map,
    the largest column: it is counted over the first `sample` matches in the index's
    storage order (None: all), which costs about the same at any case size. That sample is
    deterministic but not random: it leans to the data loaded first (the index is sorted
    by time within each loaded part, not across parts). With fewer matches than `sample`
    the counts are exact and the facet says so (`Facet.sample` None).
    """
    sql_where, base = where
    params: dict[str, object] = {**base, "lim": max(1, min(limit, MAX_PAGE))}
    table = f"{DATABASE}.events"
    order = "ORDER BY events DESC, value LIMIT {lim:UInt64}"

    def counted(expr: str, where_sql: str) -> Facet:
        """Exact counts of `expr` over every match of `where_sql`."""
        return Facet(
            index.query_rows(
                f"SELECT {expr} AS value, count() AS events FROM {table} "
                f"WHERE {where_sql} GROUP BY value {order}",
                params,
            )
        )

    if field in FACET_COLUMNS:
        return counted(field, sql_where)
    params["facet"] = field
    matches = f"{sql_where} AND mapContains(fields, {{facet:String}})"
    if sample is None or sample <= 0:
        return counted("fields[{facet:String}]", matches)
    # the first sample + 1 matches in the index's storage order, read by one thread so that
    # the sample is the same on every call (the extra one only says there are more; it is
    # not counted). Measured on 5M events: ~40-220 ms, against 0.5-1.7 s for the oldest or
    # most recent matches (ORDER BY ts over many overlapping parts) and ~1.2 s for all.
    params["sample"] = sample
    params["sample1"] = sample + 1
    first = (
        f"SELECT fields[{{facet:String}}] AS value, _part AS part, _part_offset AS offset "
        f"FROM {table} WHERE {matches} LIMIT {{sample1:UInt64}}"
    )
    numbered = (
        "SELECT value, row_number() OVER (ORDER BY part, offset) AS n, "
        f"count() OVER () AS seen FROM ({first})"
    )
    rows = index.query_rows(
        f"SELECT value, count() AS events, any(seen) AS seen FROM ({numbered}) "
        f"WHERE n <= {{sample:UInt64}} GROUP BY value {order}",
        params,
        settings="max_threads = 1",
    )
    seen = int(rows[0]["seen"]) if rows else 0
    values = [{"value": r["value"], "events": int(r["events"])} for r in rows]
    return Facet(values, sample if seen > sample else None)


def get_event(index: EventIndex, case_id: int, file_id: int, seq: int) -> dict[str, Any] | None:
    rows = index.query_rows(
        f"SELECT {', '.join(EVENT_COLUMNS)} FROM {DATABASE}.events "
        "WHERE case_id = {c:UInt32} AND file_id = {f:UInt64} AND seq = {s:UInt64} LIMIT 1",
        {"c": case_id, "f": file_id, "s": seq},
    )
    return rows[0] if rows else None


def export_chunks(
    use_index: Callable[[], AbstractContextManager[EventIndex]],
    where: tuple[str, dict[str, object]],
    fmt: ExportFormat,
    chunk_rows: int = EXPORT_CHUNK_ROWS,
) -> Iterator[pa.RecordBatch]:
    """Every match in order, fetched chunk by chunk (the index is held per chunk only):
    batches of `ts`, `file_id`, `seq` (the cursor) and `line`, the event as exported
    (`export_line_sql`). Chunks, not one stream: one query in time order over a dozen parts
    outgrew the index's budget (docs/decisions.md). A chunk holds at most `chunk_rows`
    events and about EXPORT_CHUNK_BYTES of lines; one that outgrows the budget all the same
    (events far wider than the last chunk's, or a budget that others use) is fetched again
    in a quarter of the rows, and later chunks aim at half the bytes that failed."""
    cursor: Cursor | None = None
    rows = min(chunk_rows, EXPORT_FIRST_CHUNK_ROWS)
    chunk_bytes, failed_rows = EXPORT_CHUNK_BYTES, 0
    while True:
        try:
            batches = _export_chunk(use_index, where, fmt, cursor, rows)
        except IndexMemoryError:
            if rows <= EXPORT_MIN_CHUNK_ROWS:
                raise
            failed_rows, rows = rows, max(EXPORT_MIN_CHUNK_ROWS, rows // 4)
            continue
        if not batches:
            return
        yield from batches
        last = batches[-1]
        cursor = Cursor(
            _ts_text(last.column("ts")[-1].as_py()),
            int(last.column("file_id")[-1].as_py()),
            int(last.column("seq")[-1].as_py()),
        )
        got = sum(b.num_rows for b in batches)
        if got < rows:
            return
        line_bytes = sum(len(export_lines(b)) for b in batches)
        if failed_rows:  # the failed chunk's bytes, at the width of these events, halved
            chunk_bytes = min(chunk_bytes, failed_rows * line_bytes // got // 2)
            failed_rows = 0
        rows = _next_chunk_rows(rows, line_bytes, chunk_rows, chunk_bytes)


def _export_chunk(
    use_index: Callable[[], AbstractContextManager[EventIndex]],
    where: tuple[str, dict[str, object]],
    fmt: ExportFormat,
    cursor: Cursor | None,
    rows: int,
) -> list[pa.RecordBatch]:
    """The next `rows` matches after `cursor`, as exported (`export_chunks`)."""
    sql_where, base = where
    params = {**base, "lim": rows}
    sql = (
        f"{export_select(fmt)} "
        f"WHERE {sql_where} AND {_after(cursor, False, params, SortKey.TIME)} "
        f"ORDER BY {_order(False)} LIMIT {{lim:UInt64}}"
    )
    with use_index() as index:
        settings = EXPORT_LINE_SETTINGS
        if not index.reads_in_order():  # slower (each chunk sorts), but within the budget
            settings += f", {SORTED_READ}"
        stream = index.stream_batches(  # bounded by CASESCOPE_LONG_QUERY_TIMEOUT_SECONDS
            sql, params, rows_per_batch=EXPORT_BATCH_ROWS, settings=settings, kind=QueryKind.LONG
        )
        return [b for b in stream if b.num_rows]


def _next_chunk_rows(
    rows: int, line_bytes: int, most: int, chunk_bytes: int = EXPORT_CHUNK_BYTES
) -> int:
    """Rows of the next export chunk after one of `rows` events and `line_bytes` of lines:
    about `chunk_bytes` of them, at most twice as many as the last and `most`."""
    fitting = rows * chunk_bytes // max(line_bytes, 1)
    return max(EXPORT_MIN_CHUNK_ROWS, min(most, 2 * rows, fitting))

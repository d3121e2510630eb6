"""Search for the web app: filters, keyset pages deep into a result set, facets, export.

Pages are keyset pages (`store.event_queries`): a cursor is the key of the last row shown,
so page 10,000 costs what page 1 does. Exports reuse the same keyset walk in chunks, so the
single chDB session is never held for longer than one chunk. This module decides what to
ask (which page, counted how far, sampled or not, how large a chunk); the store writes the
SQL.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from casescope.detect.levels import SigmaLevel
from casescope.errors import CasescopeError, IndexMemoryError
from casescope.model.db import Database
from casescope.model.users import EventMark
from casescope.services.detections import DetectionFilter, detected_events
from casescope.services.ioc_hits import HitFilter, hit_events
from casescope.services.mark_search import mark_lookup
from casescope.services.marks import marked_events
from casescope.services.search import ExportFormat, SearchRequest, build_where, export_lines
from casescope.store import where as conditions
from casescope.store.event_queries import (
    Keyset,
    KeysetPage,
    Ordering,
    SortKey,
    count_rows,
    keyset_rows,
    sort_value,
)
from casescope.store.exports import export_chunk
from casescope.store.facets import Facet, value_counts
from casescope.store.query import asks_for_hidden
from casescope.store.where import EventKey, Where

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

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


class Cursor(Keyset):
    """A page's keyset key as the opaque text that API clients pass back."""

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
    current: tuple[EventKey, ...] | None, new: tuple[EventKey, ...]
) -> tuple[EventKey, ...]:
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
    return replace(request, only_events=only, marks=mark_lookup(db, request.case_id))


def build_filtered_where(db: Database, request: SearchRequest, filters: EventFilters) -> Where:
    """The events of `services.search.build_where` that pass the web filters too."""
    where = build_where(resolve_request(db, request, filters))
    if filters.channel:
        where = where.and_(conditions.on_channel(filters.channel))
    if filters.computer:
        where = where.and_(conditions.on_computer(filters.computer))
    if filters.file_id is not None:
        where = where.and_(conditions.in_file(filters.file_id))
    # a query that asks for hidden events (`is:hidden`) shows them without the checkbox
    if not filters.show_hidden and not asks_for_hidden(request.query):
        hidden = marked_events(db, request.case_id, EventMark.HIDDEN)
        if hidden:
            where = where.and_(conditions.except_events(hidden))
    return where


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
    where: Where,
    spec: PageSpec,
    *,
    with_total: bool = True,
    count_limit: int | None = COUNT_LIMIT,
) -> Page:
    """One page after `spec.cursor` and (optionally) the number of matches, counted exactly
    up to `count_limit` (None: all of them)."""
    limit = max(1, min(spec.limit, MAX_PAGE))
    total, exact = -1, True
    if with_total:
        total, exact = count_matches(index, where, count_limit)
    reading = Ordering(spec.sort, spec.descending != spec.backward)  # how the index is read
    page = KeysetPage(spec.cursor, limit + 1, reading, spec.raw)
    sparse = with_total and exact and total <= SPARSE_MATCHES
    rows = keyset_rows(index, where, page, sparse=sparse)
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
    index: EventIndex, where: Where, limit: int | None = COUNT_LIMIT
) -> tuple[int, bool]:
    """The number of matches and True, or `limit` and False when there are more than it.

    A bounded count reads matches only until it has `limit + 1` of them: for a common term
    that is a small part of the case, where counting every match reads all of it.
    """
    if limit is None:
        return count_rows(index, where), True
    found = count_rows(index, where, limit + 1)
    return (limit, False) if found > limit else (found, True)


def _ts_text(value: object) -> str:
    if isinstance(value, datetime):
        return value.strftime(TS_FORMAT)
    text = str(value)
    return text if "." in text else text + ".000000"


def top_values(
    index: EventIndex,
    where: Where,
    field: str,
    limit: int = 20,
    sample: int | None = FACET_SAMPLE,
) -> Facet:
    """The most frequent values of a column or event field among the matches, with counts:
    a column's over all matches, an event field's over the first `sample` of them (None:
    all), as `store.facets` explains."""
    return value_counts(index, where, field, max(1, min(limit, MAX_PAGE)), sample)


def export_chunks(
    use_index: Callable[[], AbstractContextManager[EventIndex]],
    where: Where,
    fmt: ExportFormat,
    chunk_rows: int = EXPORT_CHUNK_ROWS,
) -> Iterator[pa.RecordBatch]:
    """Every match in order, fetched chunk by chunk (the index is held per chunk only):
    batches of `ts`, `file_id`, `seq` (the cursor) and `line`, the event as exported
    (`store.exports`). Chunks, not one stream: one query in time order over a dozen parts
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
    where: Where,
    fmt: ExportFormat,
    cursor: Cursor | None,
    rows: int,
) -> list[pa.RecordBatch]:
    """The next `rows` matches after `cursor`, as exported (`export_chunks`), with the
    index held for this chunk only."""
    with use_index() as index:
        return export_chunk(index, where, fmt, cursor, rows)


def _next_chunk_rows(
    rows: int, line_bytes: int, most: int, chunk_bytes: int = EXPORT_CHUNK_BYTES
) -> int:
    """Rows of the next export chunk after one of `rows` events and `line_bytes` of lines:
    about `chunk_bytes` of them, at most twice as many as the last and `most`."""
    fitting = rows * chunk_bytes // max(line_bytes, 1)
    return max(EXPORT_MIN_CHUNK_ROWS, min(most, 2 * rows, fitting))

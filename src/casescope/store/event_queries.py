"""The queries of a search: pages of its matches and how many there are.

Keyset pages read on the index's sort key (ts, file_id, seq): a page after the key of the
last row shown costs what the first page does, where OFFSET reads and drops every earlier
row. Other sorts (computer, channel, provider, event id, level) page on (that column, ts,
file_id, seq): the event key breaks ties, so pages stay stable and complete. Services decide
which page to ask for (`services.event_search`); the SQL is here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from casescope.errors import CasescopeError
from casescope.store.events_table import DATABASE, EVENT_COLUMNS
from casescope.store.index import SORTED_READ, EventIndex
from casescope.store.where import Where

#: The index's sort key, the order of search results and exports.
TIME_ORDER = "ts, file_id, seq"
#: What a result page holds of each event: everything but the original record, which only
#: the event's own view shows (`event_lookup.get_event`). Fetching `raw` for a page of 50
#: cost 25-100 ms of a 130-270 ms first page on 5M events (`bench/search.py`).
PAGE_COLUMNS = tuple(c for c in EVENT_COLUMNS if c != "raw")


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
class Keyset:
    """The sort key of the row a keyset page starts after: its time (text, microseconds),
    file id, seq, and its value of the sort column (None for time order)."""

    ts: str
    file_id: int
    seq: int
    value: str | int | None = None


@dataclass(frozen=True)
class Ordering:
    """The order rows are read in: a sort column (then the event key) and its direction."""

    sort: SortKey = SortKey.TIME
    descending: bool = False


@dataclass(frozen=True)
class KeysetPage:
    """Up to `limit` rows after `after` (None: from the first) in `ordering`; `raw` adds
    each event's original record."""

    after: Keyset | None
    limit: int
    ordering: Ordering = Ordering()
    raw: bool = False


def after_sql(after: Keyset | None, ordering: Ordering, params: dict[str, object]) -> str:
    """The condition of the rows beyond `after` in `ordering` (adding its values to
    `params`); CasescopeError for a key that is not one of this sort."""
    if after is None:
        return "1"
    params.update(k_ts=after.ts, k_file=after.file_id, k_seq=after.seq)
    op, bound = ("<", "<=") if ordering.descending else (">", ">=")
    key = "{k_ts:DateTime64(6, 'UTC')}, {k_file:UInt64}, {k_seq:UInt64}"
    if ordering.sort is SortKey.TIME:
        # the plain `ts` bound lets ClickHouse skip granules by the primary key
        return f"ts {bound} {{k_ts:DateTime64(6, 'UTC')}} AND (ts, file_id, seq) {op} ({key})"
    expr, kind = _SORT_SQL[ordering.sort]
    if after.value is None or isinstance(after.value, str) != (kind == "String"):
        raise CasescopeError("invalid page cursor for this sort")
    params["k_val"] = after.value
    return f"({expr}, ts, file_id, seq) {op} ({{k_val:{kind}}}, {key})"


def order_by_sql(ordering: Ordering) -> str:
    direction = "DESC" if ordering.descending else "ASC"
    sort = ordering.sort
    lead = "" if sort is SortKey.TIME else f"{_SORT_SQL[sort][0]} {direction}, "
    return f"{lead}ts {direction}, file_id {direction}, seq {direction}"


def sorted_read(index: EventIndex, sparse: bool = False) -> str:
    """The setting that sorts the matches instead of reading the parts in order: for few
    (`sparse`) matches, which time order would find only by walking most of every part, and
    for an index of too many parts to read in order (`ChdbIndex.reads_in_order`)."""
    return SORTED_READ if sparse or not index.reads_in_order() else ""


def keyset_rows(
    index: EventIndex, where: Where, page: KeysetPage, *, sparse: bool = False
) -> list[dict[str, Any]]:
    """The rows of `page` among the matches of `where`; `sparse` when the matches are few
    (`sorted_read`)."""
    params = where.with_params(lim=page.limit)
    after = after_sql(page.after, page.ordering, params)
    columns = EVENT_COLUMNS if page.raw else PAGE_COLUMNS
    return index.query_rows(
        f"SELECT {', '.join(columns)} FROM {DATABASE}.events WHERE {where.sql} AND {after} "
        f"ORDER BY {order_by_sql(page.ordering)} LIMIT {{lim:UInt64}}",
        params,
        settings=sorted_read(index, sparse),
    )


def offset_rows(index: EventIndex, where: Where, limit: int, offset: int) -> list[dict[str, Any]]:
    """`limit` matches of `where` after the first `offset`, in time order (the CLI's pages)."""
    return index.query_rows(
        f"SELECT {', '.join(EVENT_COLUMNS)} FROM {DATABASE}.events WHERE {where.sql} "
        f"ORDER BY {TIME_ORDER} LIMIT {{lim:UInt64}} OFFSET {{off:UInt64}}",
        where.with_params(lim=limit, off=offset),
        settings=sorted_read(index),
    )


def count_rows(index: EventIndex, where: Where, stop_after: int | None = None) -> int:
    """The number of matches of `where`; with `stop_after`, at most that many: the count
    reads matches only until it has them, where counting every match reads all of them."""
    table = f"{DATABASE}.events"
    if stop_after is None:
        rows = index.query_rows(f"SELECT count() AS n FROM {table} WHERE {where.sql}", where.params)
    else:
        rows = index.query_rows(
            f"SELECT count() AS n FROM (SELECT 1 FROM {table} WHERE {where.sql} "
            "LIMIT {count_lim:UInt64})",
            where.with_params(count_lim=stop_after),
        )
    return int(rows[0]["n"]) if rows else 0


def matching_keys(index: EventIndex, where: Where, most: int) -> list[tuple[int, int]]:
    """The (file id, seq) of the matches of `where`, at most `most` of them, in no order."""
    rows = index.query_rows(
        f"SELECT file_id, seq FROM {DATABASE}.events WHERE {where.sql} LIMIT {{most:UInt64}}",
        where.with_params(most=most),
    )
    return [(int(row["file_id"]), int(row["seq"])) for row in rows]

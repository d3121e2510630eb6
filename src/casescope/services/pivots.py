"""Pivots of the event workbench: a value of an event turned into links to searches.

"Filter for" and "filter out" add a pill (a query-language clause, `store.pills`) to the
search the event was opened from; "search everywhere" starts a new search of the value as
free text. The clauses themselves are written in one place, `store.pills.clause`, for the
search page's rows and sidebar and for these pages alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from casescope.store.pills import MAX_PILLS, Pivot, Source, clause
from casescope.store.query import render
from casescope.store.query_ast import Literal, Match, Or

#: The event's core columns as the query language names them (`ts` is pivoted by time
#: range, not by value, so it has none).
COLUMN_NAMES: dict[str, str] = {
    "event_id": "EventID",
    "channel": "Channel",
    "provider": "Provider",
    "computer": "Computer",
    "record_id": "EventRecordID",
    "level": "Level",
    "user_name": "user",
    "user_sid": "sid",
    "file_id": "file_id",
}
#: Core columns that free text searches (the others, numbers, only a field query finds).
TEXT_COLUMNS = frozenset({"channel", "provider", "computer", "user_name", "user_sid"})


def query_field(name: str, *, column: bool = False) -> tuple[str, Source]:
    """The query language's name of a core column (`column`) or an event field, and which
    of the two it is (`store.pills.clause` decides whether the language can address it)."""
    if column:
        return COLUMN_NAMES.get(name, name), Source.COLUMN
    return name, Source.FIELD


def any_of(field: str, values: list[str]) -> str:
    """Query text matching `field` equal to any of `values` (e.g. a GUID with and without
    its braces, as different logs write it)."""
    matches = tuple(Match(field, Literal(v)) for v in dict.fromkeys(values))
    return render(matches[0] if len(matches) == 1 else Or(matches))


@dataclass(frozen=True)
class PivotLinks:
    """The search parameters of each pivot of one value (None: that pivot is not offered)."""

    filter_for: dict[str, Any] | None
    filter_out: dict[str, Any] | None
    everywhere: dict[str, Any] | None


def _with_pill(search: Mapping[str, Any], pill: str) -> dict[str, Any] | None:
    """The search with one more pill (a search starts again at its first page)."""
    base = {k: v for k, v in search.items() if k != "cursor"}
    kept = [p for p in base.get("filter", []) if p != pill]
    if len(kept) >= MAX_PILLS:
        return None
    return {**base, "filter": [*kept, pill]}


def pivot(
    search: Mapping[str, Any], name: tuple[str, Source], value: str, *, everywhere: bool = True
) -> PivotLinks:
    """The pivots of the field `name` = `value` from the search `search` (its URL parameters,
    `filter` a list; empty for none): filters add a pill to that search, "everywhere" (unless
    `everywhere` is false: a number column, which free text does not search) starts a new
    one."""
    field, source = name
    links: dict[Pivot, dict[str, Any] | None] = {}
    for kind in (Pivot.FOR, Pivot.OUT):
        pill = clause(field, value, kind, source)
        links[kind] = _with_pill(search, pill) if pill is not None else None
    text = clause(field, value, Pivot.EVERYWHERE, source) if value.strip() else None
    links[Pivot.EVERYWHERE] = {"q": text} if text is not None and everywhere else None
    return PivotLinks(links[Pivot.FOR], links[Pivot.OUT], links[Pivot.EVERYWHERE])

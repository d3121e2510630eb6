"""Pivots: a value of an event turned into a search clause, and into the search's URL.

"Filter for" adds `field:value` to the current search, "filter out" adds `NOT field:value`,
"search everywhere" searches the value as text in every field of every event of the case.
Clauses are written by the query language's own renderer (`store.query.render`), so quotes,
backslashes, colons, spaces and any other character come back as the exact value when the
search parses them. This module is the one place that writes pivot clauses; the pages (event
page, process tree, logon session, the search page's rows) only place the links.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from casescope.store.query import render
from casescope.store.query_parse import EXISTS, FIELD_RE, Literal, Match, Node, Not, Or, Text
from casescope.store.query_sql import CORE_FIELDS

#: Values longer than this get no pivot link: the query would outgrow a URL, and a long
#: script block is better searched by a part of it.
MAX_PIVOT_CHARS = 1_000

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


class PivotKind(StrEnum):
    FOR = "for"
    OUT = "out"
    EVERYWHERE = "everywhere"


def query_field(name: str, *, column: bool = False) -> str | None:
    """The query language's name for a core column (`column`) or an event field; None when
    the query language cannot address that field (a name with spaces, or one that means a
    core column, such as an event field called `Computer`)."""
    if column:
        return COLUMN_NAMES.get(name)
    if not FIELD_RE.fullmatch(name) or name.lower() in CORE_FIELDS or name == EXISTS:
        return None
    return name


def clause(kind: PivotKind, field: str | None, value: str) -> str | None:
    """Query text for one pivot; None where no clause can say it (no field name for
    filters, an empty value to search everywhere, a value over MAX_PIVOT_CHARS, a NUL,
    which the query language refuses)."""
    if len(value) > MAX_PIVOT_CHARS or "\x00" in value:
        return None
    node: Node
    if kind is PivotKind.EVERYWHERE:
        if not value.strip():
            return None
        node = Text(Literal(value))
    elif field is None:
        return None
    else:
        node = Match(field, Literal(value))
        if kind is PivotKind.OUT:
            node = Not(node)
    return render(node)


def any_of(field: str, values: list[str]) -> str:
    """Query text matching `field` equal to any of `values` (e.g. a GUID with and without
    its braces, as different logs write it)."""
    matches = tuple(Match(field, Literal(v)) for v in dict.fromkeys(values))
    return render(matches[0] if len(matches) == 1 else Or(matches))


def narrowed(query: str, extra: str) -> str:
    """The search `query` AND `extra` (the current query in parentheses, so that its ORs
    stay inside); `extra` alone when there is no query or the query is `extra`."""
    query = query.strip()
    if not query or query == extra:
        return extra
    return f"({query}) AND {extra}"


@dataclass(frozen=True)
class Pivot:
    """The search parameters of each pivot of one value (None: that pivot is not offered)."""

    filter_for: dict[str, str] | None
    filter_out: dict[str, str] | None
    everywhere: dict[str, str] | None


def pivot(
    search: Mapping[str, str], field: str | None, value: str, *, everywhere: bool = True
) -> Pivot:
    """The pivots of `field` = `value` from the search `search` (its URL parameters; empty
    for none): filters narrow that search, "everywhere" (unless `everywhere` is false: a
    number column, which free text does not search) starts a new one. Cursors are
    dropped: a narrowed search starts at its first page."""
    base = {k: v for k, v in search.items() if k != "cursor"}
    out: dict[PivotKind, dict[str, str] | None] = {}
    for kind in PivotKind:
        text = clause(kind, field, value)
        if kind is PivotKind.EVERYWHERE and not everywhere:
            text = None
        if text is None:
            out[kind] = None
        elif kind is PivotKind.EVERYWHERE:
            out[kind] = {"q": text}
        else:
            out[kind] = {**base, "q": narrowed(base.get("q", ""), text)}
    return Pivot(out[PivotKind.FOR], out[PivotKind.OUT], out[PivotKind.EVERYWHERE])

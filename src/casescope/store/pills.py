"""Filters as query-language clauses: the pills of the search page.

"Filter for" a value adds `field:"value"`, "filter out" adds `NOT field:"value"`, "search
everywhere" searches the value as free text. Each clause is written by `render` from the AST
it must mean, so any value (quotes, colons, backslashes, wildcards) reads back as exactly
itself; `conjoin` joins the query and its pills into one query the same way.

A field name the query language cannot write (`FIELD_RE`), or an event field whose name the
language reads as a core column (`host`, `user`, `level`, ...), has no clause: the page
offers no filter for it rather than one that means something else.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from casescope.store.query import QuerySyntaxError, parse_query, render
from casescope.store.query_ast import And, Literal, Match, Not, Text
from casescope.store.query_parse import EXISTS, FIELD_RE, KEYWORDS
from casescope.store.query_sql import CORE_FIELDS

#: The longest clause a pill may be (a URL parameter; longer values are not offered).
MAX_CLAUSE = 2000
#: The most pills a search may have.
MAX_PILLS = 20


class Pivot(StrEnum):
    """What a click on a value does to the search."""

    FOR = "for"
    OUT = "out"
    EVERYWHERE = "everywhere"


class Source(StrEnum):
    """Where a value comes from: a core column of the index or the event's `fields` map."""

    COLUMN = "column"
    FIELD = "field"


def nameable(field: str, source: Source) -> bool:
    """Whether `field:value` in the query language means this column or event field."""
    if not FIELD_RE.fullmatch(field) or field in KEYWORDS or field == EXISTS:
        return False
    is_core = field.lower() in CORE_FIELDS
    return is_core if source is Source.COLUMN else not is_core


def _checked(text: str) -> str | None:
    """`text` when it is a usable pill: short enough and readable (no NUL, valid text)."""
    if len(text) > MAX_CLAUSE:
        return None
    try:
        parse_query(text)
    except QuerySyntaxError:
        return None
    return text


def clause(field: str, value: str, pivot: Pivot, source: Source = Source.FIELD) -> str | None:
    """The clause that `pivot` adds for `value` of `field`, or None where there is none."""
    if pivot is Pivot.EVERYWHERE:
        return _checked(render(Text(Literal(value)))) if value else None
    if not nameable(field, source):
        return None
    match = Match(field, Literal(value))
    return _checked(render(match if pivot is Pivot.FOR else Not(match)))


def conjoin(query: str, pills: Sequence[str]) -> str:
    """The query AND every pill, as one query (the query as typed when there is no pill).

    Raises QuerySyntaxError for a part that does not parse, with "filter N: " before the
    reason for the Nth pill.
    """
    if not pills:
        return query
    nodes = [parse_query(query)]
    for n, pill in enumerate(pills, start=1):
        try:
            nodes.append(parse_query(pill))
        except QuerySyntaxError as exc:
            raise QuerySyntaxError(f"filter {n}: {exc.reason}", exc.position, exc.hint) from None
    present = tuple(node for node in nodes if node is not None)
    if not present:
        return ""
    return render(present[0] if len(present) == 1 else And(present))

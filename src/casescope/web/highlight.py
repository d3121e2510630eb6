"""Matches highlighted in results: the query's words in <mark>, everything else escaped.

The words come from the parsed query (free text and field values, not what is under NOT;
a wildcard splits a value into the literal runs around it). `mark` escapes the text around
and inside each match itself and returns Markup, so event data never reaches the page as
HTML whatever it holds.
"""

from __future__ import annotations

import functools
import re

from markupsafe import Markup, escape

from casescope.store.query import QuerySyntaxError, parse_query
from casescope.store.query_ast import And, Literal, Match, Node, Or, Text, value_parts

#: Shorter runs (one letter) would mark half of every line.
MIN_TERM = 2
MAX_TERMS = 20


def _runs(value: Literal | object) -> list[str]:
    """The literal runs of a value, split at its wildcards."""
    runs, current = [], []
    for ch, wild in value_parts(value):  # type: ignore[arg-type]
        if wild:
            runs.append("".join(current))
            current = []
        else:
            current.append(ch)
    runs.append("".join(current))
    return [r for r in runs if len(r.strip()) >= MIN_TERM]


def _collect(node: Node | None, out: list[str]) -> None:
    match node:
        case And(children=children) | Or(children=children):
            for child in children:
                _collect(child, out)
        case Text(value=value) | Match(value=value):
            out.extend(_runs(value))


def highlight_terms(query: str) -> tuple[str, ...]:
    """The texts of `query` worth marking in its results (none for a query that does not
    parse: the page shows its error instead)."""
    try:
        node = parse_query(query)
    except QuerySyntaxError:
        return ()
    found: list[str] = []
    _collect(node, found)
    return tuple(dict.fromkeys(found))[:MAX_TERMS]


@functools.lru_cache(maxsize=64)
def _pattern(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    if not terms:
        return None
    ordered = sorted(terms, key=len, reverse=True)  # the longest of overlapping terms wins
    return re.compile("|".join(re.escape(t) for t in ordered), re.IGNORECASE)


def mark(text: object, terms: tuple[str, ...] = ()) -> Markup:
    """`text` escaped, each case-insensitive occurrence of a term wrapped in <mark>."""
    value = "" if text is None else str(text)
    pattern = _pattern(terms)
    if pattern is None:
        return escape(value)
    out, at = [], 0
    for found in pattern.finditer(value):
        out.append(escape(value[at : found.start()]))
        out.append(Markup("<mark>") + escape(found.group()) + Markup("</mark>"))
        at = found.end()
    out.append(escape(value[at:]))
    return Markup("").join(out)

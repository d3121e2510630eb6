"""The analyst query language: parse (`query_parse`), compile to SQL (`query_sql`), render.

`compile_query` is what search and export call: it turns a Lucene-like query into a
parameterised ClickHouse boolean expression over the events table, so user text only ever
travels in parameters. docs/query-language.md is the reference for analysts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import UnionType

from casescope.store.query_ast import (
    And,
    Compare,
    Exists,
    Literal,
    Marked,
    MarkField,
    Match,
    Node,
    Not,
    Or,
    Pattern,
    Range,
    Text,
    Value,
    value_parts,
)
from casescope.store.query_parse import (
    EXISTS,
    FIELD_RE,
    KEYWORDS,
    START_ESCAPABLE,
    QueryLimits,
    QuerySyntaxError,
    escapable,
    mark_terms,
    parse_query,
)
from casescope.store.query_sql import MarkLookup, compile_node

__all__ = [
    "CompiledQuery",
    "MarkLookup",
    "Marked",
    "QueryLimits",
    "QuerySyntaxError",
    "compile_query",
    "mark_terms",
    "parse_query",
    "render",
]


@dataclass(frozen=True)
class CompiledQuery:
    """A WHERE fragment (`sql`) and the values of the parameters it names."""

    sql: str
    params: dict[str, object] = field(default_factory=dict)


def compile_query(
    text: str,
    *,
    param_prefix: str = "q",
    limits: QueryLimits | None = None,
    marks: MarkLookup | None = None,
) -> CompiledQuery:
    """`text` as a boolean SQL expression over the events table ("1" for an empty query).

    Raises QuerySyntaxError (a ValueError) with the column of the problem, also for a query
    over `limits` (default: `QueryLimits()`). `marks` answers mark terms (`tag:x`,
    `is:starred`, `has:note`, `note:x`) with the events of the case searched; without it a
    query that has one is refused (a check of a query's syntax passes `no_marks`).
    """
    if not param_prefix.isidentifier():
        raise ValueError(f"param_prefix must be an identifier, not {param_prefix!r}")
    ast = parse_query(text, limits)
    if ast is None:
        return CompiledQuery("1")
    sql, params = compile_node(ast, param_prefix, marks)
    return CompiledQuery(sql, params)


def no_marks(term: Marked) -> tuple[tuple[int, int], ...]:
    """A `MarkLookup` that finds no events: for checking a query's syntax only."""
    return ()


def asks_for_hidden(text: str) -> bool:
    """Whether a query has an `is:hidden` term: its events are shown though hidden."""
    try:
        return any(
            t.field is MarkField.IS and t.value == Literal("hidden")
            for t in mark_terms(parse_query(text))
        )
    except QuerySyntaxError:
        return False


def render(node: Node | None) -> str:
    """Query text that parses back to `node` (the inverse of `parse_query`)."""
    match node:
        case None:
            return ""
        case Or(children=children):
            return " OR ".join(_child(c, Or) for c in children)
        case And(children=children):
            return " AND ".join(_child(c, And | Or) for c in children)
        case Not(child=child):
            return "NOT " + _child(child, And | Or)
        case Text(value=value):
            return _free_text(value)
        case Match():
            return _match(_name(node.field), node.value)
        case Compare():
            return f"{_name(node.field)}:{node.op}{_operand(node.value)}"
        case Range():
            low = "[" if node.include_low else "{"
            high = "]" if node.include_high else "}"
            return f"{_name(node.field)}:{low}{_bound(node.low)} TO {_bound(node.high)}{high}"
        case Exists():
            return f"{EXISTS}:{_name(node.field)}"
        case Marked():
            return _match(node.field.value, node.value)
    raise TypeError(f"not a query node: {node!r}")


def _name(field: str) -> str:
    """A field name as typed: bare when it can be, else quoted (`"New Value"`; an event field
    named as a mark name, `"tag"`, is always quoted)."""
    bare = FIELD_RE.fullmatch(field) and field not in KEYWORDS and field not in _MARK_NAMES
    return field if bare else _quote(field)


_MARK_NAMES = frozenset(f.value for f in MarkField)


def _child(node: Node, wrap: type | UnionType) -> str:
    """A child of an operator, in parentheses where precedence would otherwise regroup it."""
    text = render(node)
    return f"({text})" if isinstance(node, wrap) else text


def _plain(text: str) -> bool:
    """Whether `text` can be written as a bare word without escapes."""
    return bool(text) and not any(escapable(c, first=False) for c in text)


def _quote(text: str) -> str:
    """`text` in double quotes; a backslash is doubled only where it would escape."""
    out = []
    for i, ch in enumerate(text):
        if ch == '"':
            out.append('\\"')
        elif ch == "\\" and (i + 1 == len(text) or escapable(text[i + 1], first=False)):
            out.append("\\\\")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _escaped(value: Value) -> str:
    """A value as a bare word, escaping what would otherwise be syntax."""
    out = []
    for i, (ch, wild) in enumerate(value_parts(value)):
        out.append(ch if wild or not escapable(ch, first=i == 0) else "\\" + ch)
    return "".join(out)


def _free_text(value: Value) -> str:
    if isinstance(value, Pattern):
        return _escaped(value)
    text = value.text
    if _plain(text) and text[0] not in START_ESCAPABLE and text not in KEYWORDS:
        return text
    return _quote(text)


def _match(name: str, value: Value) -> str:
    if isinstance(value, Literal):
        text = value.text
        plain = _plain(text) and text[0] not in START_ESCAPABLE and not _colon_trap(name, text)
        return f"{name}:{text if plain else _quote(text)}"
    text = _escaped(value)
    return f"{name}:({text})" if _colon_trap(name, text) else f"{name}:{text}"


def _colon_trap(name: str, text: str) -> bool:
    """Whether `name:text` would read as a path or URL rather than a field (see `separates`)."""
    drive = len(name) == 1 and name.isalpha() and text[:1] in ("\\", "/")
    return drive or text.startswith(("//", ":"))


def _operand(text: str) -> str:
    if _plain(text) and text[0] not in START_ESCAPABLE and text[0] != "=":
        return text
    return _quote(text)


def _bound(text: str | None) -> str:
    if text is None:
        return "*"
    if text and text != "*" and not any(c.isspace() or c in '[]{}"\\' for c in text):
        return text
    return _quote(text)

"""Compile the query language (`query_parse`) to a parameterised ClickHouse WHERE clause.

User text only ever travels in parameters (`{q0:String}`); field names are restricted by the
parser to `[A-Za-z0-9_.@-]` and map keys are parameters too. See docs/query-language.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from casescope.store.query_parse import (
    And,
    Node,
    Not,
    Or,
    QuerySyntaxError,
    Term,
    Value,
    parse_query,
)

__all__ = ["CompiledQuery", "QuerySyntaxError", "compile_query"]

STRING_COLUMNS = {
    "channel": "channel",
    "provider": "provider",
    "provider_name": "provider",
    "computer": "computer",
    "host": "computer",
    "hostname": "computer",
    "user": "user_name",
    "user_name": "user_name",
    "sid": "user_sid",
    "user_sid": "user_sid",
}
NUMBER_COLUMNS = {
    "eventid": "event_id",
    "event_id": "event_id",
    "eventrecordid": "record_id",
    "record_id": "record_id",
    "level": "level",
    "file_id": "file_id",
    "seq": "seq",
}
TIME_NAMES = {"ts", "@timestamp", "timestamp", "time"}
TOKEN_RE = re.compile(r"[a-z0-9]+")
COMPARE = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


@dataclass
class CompiledQuery:
    sql: str
    params: dict[str, object] = field(default_factory=dict)


class _Compiler:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.params: dict[str, object] = {}

    def param(self, value: object, kind: str) -> str:
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = value
        return f"{{{name}:{kind}}}"

    def node(self, node: Node) -> str:
        if isinstance(node, And):
            return "(" + " AND ".join(self.node(c) for c in node.children) + ")"
        if isinstance(node, Or):
            return "(" + " OR ".join(self.node(c) for c in node.children) + ")"
        if isinstance(node, Not):
            return f"(NOT {self.node(node.child)})"
        return self.term(node)

    def term(self, term: Term) -> str:
        if term.field is None:
            return self.free_text(term.value)  # type: ignore[arg-type]
        name = term.field.lower()
        if term.op == "exists":
            return self.exists(term.field)
        if name in NUMBER_COLUMNS:
            return self.number(NUMBER_COLUMNS[name], term)
        if name in TIME_NAMES:
            return self.time(term)
        if name in STRING_COLUMNS:
            return self.string(STRING_COLUMNS[name], term)
        key = self.param(term.field, "String")
        return self.string(f"fields[{key}]", term, numeric=f"toFloat64OrNull(fields[{key}])")

    def free_text(self, value: Value) -> str:
        text = value.text.lower()
        if value.wildcard:
            return f"search_text LIKE {self.param(_like(value.pattern.lower(), True), 'String')}"
        if TOKEN_RE.fullmatch(text):
            return f"hasToken(search_text, {self.param(text, 'String')})"
        clauses = [f"position(search_text, {self.param(text, 'String')}) > 0"]
        for token in _interior_tokens(text):
            clauses.append(f"hasToken(search_text, {self.param(token, 'String')})")
        return "(" + " AND ".join(clauses) + ")"

    def exists(self, name: str) -> str:
        lowered = name.lower()
        if lowered in NUMBER_COLUMNS:
            return f"isNotNull({NUMBER_COLUMNS[lowered]})"
        if lowered in STRING_COLUMNS:
            return f"notEmpty({STRING_COLUMNS[lowered]})"
        return f"mapContains(fields, {self.param(name, 'String')})"

    def string(self, column: str, term: Term, numeric: str | None = None) -> str:
        if term.op == "range" or term.op in COMPARE:
            if numeric is None:
                return self.compare(f"lowerUTF8({column})", term, "String", str.lower)
            return self.compare(numeric, term, "Float64", _float)
        value: Value = term.value  # type: ignore[assignment]
        if value.wildcard:
            pattern = self.param(_like(value.pattern.lower(), False), "String")
            return f"lowerUTF8({column}) LIKE {pattern}"
        return f"lowerUTF8({column}) = {self.param(value.text.lower(), 'String')}"

    def number(self, column: str, term: Term) -> str:
        if term.op == "eq" and term.value is not None and term.value.wildcard:
            pattern = self.param(_like(term.value.pattern, False), "String")
            return f"toString({column}) LIKE {pattern}"
        return self.compare(column, term, "Int64", _int)

    def time(self, term: Term) -> str:
        column = "ts"
        return self.compare(column, term, "DateTime64(6, 'UTC')", _time)

    def compare(self, column: str, term: Term, kind: str, convert) -> str:  # type: ignore[no-untyped-def]
        value: Value = term.value  # type: ignore[assignment]
        if term.op == "eq":
            return f"{column} = {self.param(convert(value.text), kind)}"
        if term.op in COMPARE:
            return f"{column} {COMPARE[term.op]} {self.param(convert(value.text), kind)}"
        clauses = []
        if value.text != "*":
            op = ">=" if term.include_lower else ">"
            clauses.append(f"{column} {op} {self.param(convert(value.text), kind)}")
        upper: Value = term.upper  # type: ignore[assignment]
        if upper.text != "*":
            op = "<=" if term.include_upper else "<"
            clauses.append(f"{column} {op} {self.param(convert(upper.text), kind)}")
        return "(" + " AND ".join(clauses or ["1"]) + ")"


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise QuerySyntaxError(f"{text!r} is not a whole number", 0) from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise QuerySyntaxError(f"{text!r} is not a number", 0) from None


def _time(text: str) -> str:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise QuerySyntaxError(f"{text!r} is not an ISO 8601 time", 0) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _like(pattern: str, substring: bool) -> str:
    """A wildcard pattern (`*`, `?`, `\\`-escaped literals) as a LIKE pattern."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            literal = pattern[i + 1]
            out.append("\\" + literal if literal in "%_\\" else literal)
            i += 2
            continue
        out.append({"*": "%", "?": "_", "%": "\\%", "_": "\\_"}.get(ch, ch))
        i += 1
    body = "".join(out)
    return f"%{body}%" if substring else body


def _interior_tokens(text: str) -> list[str]:
    """Whole tokens inside a phrase (not touching its ends): safe index prefilters."""
    tokens = []
    for match in TOKEN_RE.finditer(text):
        if match.start() > 0 and match.end() < len(text) and len(match.group()) >= 2:
            tokens.append(match.group())
    return tokens[:8]


def compile_query(text: str, *, param_prefix: str = "q") -> CompiledQuery:
    """`text` as a WHERE expression over the events table ("1" for an empty query)."""
    ast = parse_query(text)
    if ast is None:
        return CompiledQuery("1")
    compiler = _Compiler(param_prefix)
    return CompiledQuery(compiler.node(ast), compiler.params)

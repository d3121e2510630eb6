"""Compile a parsed query (`query_parse`) to a parameterised ClickHouse boolean expression.

User text only ever travels in parameters (`{q0:String}`): field names reach SQL only as
parameters (map keys) or through the fixed table of core columns below. String comparisons
ignore case; free text uses the `search_text` column and its text index (`hasToken`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from enum import Enum

from casescope.parse.schema import INDEXED_TOKEN_CHARS
from casescope.store.query_ast import (
    And,
    Compare,
    Exists,
    Literal,
    Marked,
    Match,
    Node,
    Not,
    Or,
    Part,
    Pattern,
    Range,
    Text,
    value_parts,
)
from casescope.store.query_parse import QuerySyntaxError

#: What an event field name may differ by and still be the same field (`Compiler.key`).
LOOSE = r"[\s_]"
LOOSE_RE = re.compile(LOOSE)
#: At most this many `hasToken` prefilters per term (the longest words are kept).
MAX_TOKENS = 8
EPOCH = "toDateTime64(0, 6, 'UTC')"
TIME_TYPE = "DateTime64(6, 'UTC')"
INT64 = (-(2**63), 2**63 - 1)
_INT_RE = re.compile(r"[+-]?[0-9]{1,20}")
_FLOAT_RE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_TIME_RE = re.compile(
    r"(\d{4})(?:-(\d\d)(?:-(\d\d)(?:[Tt ](\d\d)(?::(\d\d)(?::(\d\d)(?:[.,](\d{1,9}))?)?)?)?)?)?"
    r"([Zz]|[+-]\d\d(?::?\d\d)?)?",
    re.ASCII,
)


#: (file_id, seq) as one UInt64 for set membership: 24 bits of file id, 40 of event number.
EVENT_KEY_SQL = "bitOr(bitShiftLeft(toUInt64(file_id), 40), seq)"
#: The events (file id, seq) of one mark term in the case searched: marks and notes live in
#: the metadata DB, so the service that compiles a search answers them (services/marks.py).
MarkLookup = Callable[[Marked], Sequence[tuple[int, int]]]


def event_key(file_id: int, seq: int) -> int:
    """The `EVENT_KEY_SQL` of one event, computed on this side."""
    return (file_id << 40) | seq


class Kind(Enum):
    TEXT = "text"
    NUMBER = "number"
    TIME = "time"


@dataclass(frozen=True)
class Column:
    """A core column of the events table that a field name maps to."""

    sql: str
    kind: Kind
    nullable: bool = False


_EVENT_ID = Column("event_id", Kind.NUMBER, nullable=True)
_PROVIDER = Column("provider", Kind.TEXT)
_COMPUTER = Column("computer", Kind.TEXT)
_RECORD_ID = Column("record_id", Kind.NUMBER, nullable=True)
_USER = Column("user_name", Kind.TEXT)
_SID = Column("user_sid", Kind.TEXT)
_TS = Column("ts", Kind.TIME)

#: Field names (compared lowercased) that mean a core column; any other name is `fields[name]`.
CORE_FIELDS: dict[str, Column] = {
    "eventid": _EVENT_ID,
    "event_id": _EVENT_ID,
    "channel": Column("channel", Kind.TEXT),
    "provider": _PROVIDER,
    "provider_name": _PROVIDER,
    "computer": _COMPUTER,
    "host": _COMPUTER,
    "hostname": _COMPUTER,
    "eventrecordid": _RECORD_ID,
    "record_id": _RECORD_ID,
    "level": Column("level", Kind.NUMBER, nullable=True),
    "user": _USER,
    "user_name": _USER,
    "sid": _SID,
    "user_sid": _SID,
    "file_id": Column("file_id", Kind.NUMBER),
    "seq": Column("seq", Kind.NUMBER),
    "ts": _TS,
    "@timestamp": _TS,
    "timestamp": _TS,
}


def _all(clauses: list[str]) -> str:
    return clauses[0] if len(clauses) == 1 else "(" + " AND ".join(clauses) + ")"


def _token_char(ch: str) -> bool:
    """Characters ClickHouse's `splitByNonAlpha` keeps inside a token (non-ASCII included)."""
    return not ch.isascii() or ch.isalnum()


def is_token(text: str) -> bool:
    """Whether `text` is one token that the text index holds (not one it leaves out)."""
    return 0 < len(text) < INDEXED_TOKEN_CHARS and all(_token_char(c) for c in text)


def prefilter_tokens(parts: list[Part], *, anchored: bool) -> list[str]:
    """Whole words that any match of `parts` must contain as tokens of `search_text`.

    A word qualifies when a separator (or, for `anchored` values, the value's edge) is on
    both sides of it: a wildcard or an unanchored edge could extend it into a longer token.
    """
    found: list[str] = []
    i = 0
    while i < len(parts):
        if parts[i][1] or not _token_char(parts[i][0]):
            i += 1
            continue
        j = i
        while j < len(parts) and not parts[j][1] and _token_char(parts[j][0]):
            j += 1
        left = anchored if i == 0 else not parts[i - 1][1]
        right = anchored if j == len(parts) else not parts[j][1]
        word = "".join(c for c, _ in parts[i:j])
        if left and right and 2 <= len(word) < INDEXED_TOKEN_CHARS and word not in found:
            found.append(word)
        i = j
    return sorted(found, key=len, reverse=True)[:MAX_TOKENS]


def lowered_parts(value: Literal | Pattern) -> list[Part]:
    """The characters of a value, each literal run lowercased as a whole."""
    parts: list[Part] = []
    run: list[str] = []
    for ch, wild in [*value_parts(value), ("", True)]:
        if not wild:
            run.append(ch)
            continue
        parts.extend((c, False) for c in "".join(run).lower())
        run = []
        if ch:
            parts.append((ch, True))
    return parts


def like_pattern(parts: list[Part]) -> str:
    """Characters and wildcards as a LIKE pattern (`%`, `_` and `\\` escaped)."""
    out = []
    for ch, wild in parts:
        if wild:
            out.append("%" if ch == "*" else "_")
        else:
            out.append("\\" + ch if ch in "%_\\" else ch)
    return "".join(out)


def _unanchored(parts: list[Part]) -> list[Part]:
    """A pattern for a substring search: a `*` at each end unless one is there already."""
    head = [] if parts and parts[0] == ("*", True) else [("*", True)]
    tail = [] if parts and parts[-1] == ("*", True) else [("*", True)]
    return head + parts + tail


def _only_stars(value: Literal | Pattern) -> bool:
    return isinstance(value, Pattern) and all(wild and c == "*" for c, wild in value_parts(value))


def parse_integer(text: str, pos: int) -> int:
    if not _INT_RE.fullmatch(text):
        raise QuerySyntaxError(f"{text!r} is not a whole number", pos)
    number = int(text)
    if not INT64[0] <= number < 2**64:
        raise QuerySyntaxError(f"{text} is out of range", pos)
    return number


def _number(text: str) -> float | None:
    """`text` as a number for comparing event fields (None: compare as text)."""
    if not _FLOAT_RE.fullmatch(text):
        return None
    number = float(text)
    return number if math.isfinite(number) else None


def parse_time(text: str, pos: int) -> tuple[datetime, datetime]:
    """An ISO 8601 time as the span it names: `2024-03-01` is that whole day (UTC if no zone)."""
    match = _TIME_RE.fullmatch(text.strip())
    if match is None:
        raise QuerySyntaxError(f"{text!r} is not an ISO 8601 time", pos)
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        fields = (int(month or 1), int(day or 1), int(hour or 0), int(minute or 0))
        local = datetime(int(year), *fields, int(second or 0), micro, tzinfo=_zone(zone))
        end = _span_end(local, match.groups())
    except (ValueError, OverflowError) as exc:
        raise QuerySyntaxError(f"{text!r} is not a valid time ({exc})", pos) from None
    start = local.astimezone(UTC)
    if not 1900 <= start.year <= 2299:
        raise QuerySyntaxError(f"{text!r} is outside the years 1900-2299", pos)
    return start, end.astimezone(UTC)


def _zone(zone: str | None) -> tzinfo:
    if zone is None or zone in ("Z", "z"):
        return UTC
    digits = zone[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
    return timezone(-offset if zone[0] == "-" else offset)


def _span_end(start: datetime, groups: tuple[str | None, ...]) -> datetime:
    """The end (exclusive) of the span a time written to some precision names."""
    _, month, day, hour, minute, second, fraction, _ = groups
    if fraction is not None:
        return start + timedelta(microseconds=10 ** max(0, 6 - len(fraction)))
    for part, step in ((second, 1), (minute, 60), (hour, 3600), (day, 86400)):
        if part is not None:
            return start + timedelta(seconds=step)
    if month is not None:
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start.replace(year=start.year + 1)


def _time_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


Bound = tuple[str, str, int]  # SQL operator, value as typed, position in the query


class Compiler:
    """Builds the SQL of one query; `params` collects the values its placeholders name."""

    def __init__(self, prefix: str, marks: MarkLookup | None = None) -> None:
        self.prefix = prefix
        self.params: dict[str, object] = {}
        self.marks = marks

    def param(self, value: object, sql_type: str) -> str:
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = value
        return f"{{{name}:{sql_type}}}"

    def string(self, lowered: str) -> str:
        """A lowercased string; ClickHouse lowers non-ASCII ones again, by its own rules."""
        placeholder = self.param(lowered, "String")
        return placeholder if lowered.isascii() else f"lowerUTF8({placeholder})"

    def integer(self, number: int) -> str:
        return self.param(number, "Int64" if number <= INT64[1] else "UInt64")

    def time(self, moment: datetime) -> str:
        return self.param(_time_text(moment), TIME_TYPE)

    def tokens(self, parts: list[Part], *, anchored: bool) -> list[str]:
        words = prefilter_tokens(parts, anchored=anchored)
        return [f"hasToken(search_text, {self.string(word)})" for word in words]

    def node(self, node: Node) -> str:
        match node:
            case And(children=children):
                return "(" + " AND ".join(self.node(c) for c in children) + ")"
            case Or(children=children):
                return "(" + " OR ".join(self.node(c) for c in children) + ")"
            case Not(child=child):
                return f"NOT ({self.node(child)})"
            case Text():
                return self.text(node)
            case Match():
                return self.match(node)
            case Exists():
                return self.exists(node.field)
            case Compare():
                return self.bounds(node.field, [(str(node.op), node.value, node.pos)])
            case Range():
                return self.range(node)
            case Marked():
                return self.marked(node)
        raise TypeError(f"not a query node: {node!r}")

    def marked(self, node: Marked) -> str:
        """The events the mark term's lookup names, as a set the index reads by key."""
        if self.marks is None:
            raise QuerySyntaxError(f"{node.field}: can only be searched in a case", node.pos)
        events = sorted(set(self.marks(node)))
        if not events:
            return "0"
        files = self.param(sorted({f for f, _ in events}), "Array(UInt64)")
        keys = self.param([event_key(f, s) for f, s in events], "Array(UInt64)")
        return (
            f"(file_id IN (SELECT arrayJoin({files})) AND "
            f"{EVENT_KEY_SQL} IN (SELECT arrayJoin({keys})))"
        )

    def text(self, node: Text) -> str:
        """Free text: a word is a whole token, anything else a substring of the event's text."""
        parts = lowered_parts(node.value)
        text = "".join(c for c, _ in parts)
        if isinstance(node.value, Literal):
            if not text:
                return "1"
            if is_token(text):
                return f"hasToken(search_text, {self.string(text)})"
            clause = f"position(search_text, {self.string(text)}) > 0"
        elif _only_stars(node.value):
            return "1"
        else:
            clause = f"search_text LIKE {self.string(like_pattern(_unanchored(parts)))}"
        return _all([clause, *self.tokens(parts, anchored=False)])

    def key(self, name: str) -> str:
        """The map key an event field name reads: the name itself when the event has it,
        else the event's first key that is the same name without whitespace and underscores
        (`NewValue` finds Defender's `New Value`, `"New Value"` a `NewValue`, as Sigma rules
        name them; docs/sigma.md). Case still counts."""
        exact = self.param(name, "String")
        loose = self.param(LOOSE_RE.sub("", name), "String")
        pattern = self.param(LOOSE, "String")
        return (
            f"if(mapContains(fields, {exact}), {exact}, arrayFirst("
            f"k -> replaceRegexpAll(k, {pattern}, {self.param('', 'String')}) = {loose}, "
            "mapKeys(fields)))"
        )

    def match(self, node: Match) -> str:
        column = CORE_FIELDS.get(node.field.lower())
        if column is None:
            key = self.key(node.field)
            present = f"mapContains(fields, {key})"
            sql = self.text_match(f"fields[{key}]", node.value, present)
            empty = isinstance(node.value, Literal) and not node.value.text
            return f"({present} AND {sql})" if empty else sql
        if column.kind is Kind.TEXT:
            return self.text_match(column.sql, node.value, f"notEmpty({column.sql})")
        if _only_stars(node.value):
            return self.exists(node.field)
        if column.kind is Kind.TIME:
            return self.time_match(node)
        return self.number_match(column, node)

    def text_match(self, expr: str, value: Literal | Pattern, present: str) -> str:
        """A string equal to (or LIKE) the value, ignoring case; `*` alone means `present`."""
        if _only_stars(value):
            return present
        parts = lowered_parts(value)
        if isinstance(value, Literal):
            clause = f"lowerUTF8({expr}) = {self.string(''.join(c for c, _ in parts))}"
        else:
            clause = f"lowerUTF8({expr}) LIKE {self.string(like_pattern(parts))}"
        return _all([clause, *self.tokens(parts, anchored=True)])

    def number_match(self, column: Column, node: Match) -> str:
        if isinstance(node.value, Pattern):
            like = self.param(like_pattern(value_parts(node.value)), "String")
            return _null_safe(column, [f"toString({column.sql}) LIKE {like}"])
        number = parse_integer(node.value.text, node.pos)
        return _null_safe(column, [f"{column.sql} = {self.integer(number)}"])

    def time_match(self, node: Match) -> str:
        if isinstance(node.value, Pattern):
            hint = "use a range such as ts:[2024-03-01 TO 2024-03-02]"
            raise QuerySyntaxError("wildcards cannot be used in times", node.pos, hint)
        start, end = parse_time(node.value.text, node.pos)
        return f"(ts >= {self.time(start)} AND ts < {self.time(end)})"

    def range(self, node: Range) -> str:
        bounds: list[Bound] = []
        if node.low is not None:
            bounds.append((">=" if node.include_low else ">", node.low, node.low_pos))
        if node.high is not None:
            bounds.append(("<=" if node.include_high else "<", node.high, node.high_pos))
        return self.bounds(node.field, bounds) if bounds else self.exists(node.field)

    def bounds(self, name: str, bounds: list[Bound]) -> str:
        column = CORE_FIELDS.get(name.lower())
        if column is None:
            return self.field_bounds(name, bounds)
        if column.kind is Kind.NUMBER:
            clauses = [
                f"{column.sql} {op} {self.integer(parse_integer(text, pos))}"
                for op, text, pos in bounds
            ]
            return _null_safe(column, clauses)
        if column.kind is Kind.TIME:
            return _all([self.time_bound(*bound) for bound in bounds])
        return _all(
            [f"notEmpty({column.sql})"]
            + [
                f"lowerUTF8({column.sql}) {op} {self.string(text.lower())}"
                for op, text, _ in bounds
            ]
        )

    def time_bound(self, op: str, text: str, pos: int) -> str:
        """A bound on `ts`: `>` a day is after that day's end, `<=` a day is before its end."""
        start, end = parse_time(text, pos)
        moment = start if op in (">=", "<") else end
        return f"ts {'>=' if op.startswith('>') else '<'} {self.time(moment)}"

    def field_bounds(self, name: str, bounds: list[Bound]) -> str:
        """Bounds on an event field: as numbers when every bound is one, else as text.

        Values are compared as Float64 so that `bytes:>1000` also finds "1024.5"; integers
        are exact up to 2**53.
        """
        key = self.key(name)
        numbers = [_number(text) for _, text, _ in bounds]
        if any(n is None for n in numbers):
            clauses = [
                f"lowerUTF8(fields[{key}]) {op} {self.string(text.lower())}"
                for op, text, _ in bounds
            ]
            return _all([f"mapContains(fields, {key})", *clauses])
        clauses = [
            f"toFloat64OrNull(fields[{key}]) {op} {self.param(n, 'Float64')}"
            for (op, _, _), n in zip(bounds, numbers, strict=True)
        ]
        return f"ifNull({' AND '.join(clauses)}, 0)"

    def exists(self, name: str) -> str:
        column = CORE_FIELDS.get(name.lower())
        if column is None:
            return f"mapContains(fields, {self.key(name)})"
        if column.kind is Kind.TEXT:
            return f"notEmpty({column.sql})"
        if column.kind is Kind.TIME:
            return f"ts != {EPOCH}"
        return f"isNotNull({column.sql})" if column.nullable else "1"


def _null_safe(column: Column, clauses: list[str]) -> str:
    """Comparisons on a Nullable column as plain booleans (so NOT keeps its meaning)."""
    if column.nullable:
        return f"ifNull({' AND '.join(clauses)}, 0)"
    return _all(clauses)


def compile_node(
    node: Node, prefix: str, marks: MarkLookup | None = None
) -> tuple[str, dict[str, object]]:
    """The SQL boolean expression for `node` and the parameters it names; `marks` answers
    its mark terms (without it, a query that has one is refused)."""
    compiler = Compiler(prefix, marks)
    return compiler.node(node), compiler.params

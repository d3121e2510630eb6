"""Parse the analyst query language (Lucene-like) into a small AST.

    query    := or_expr?
    or_expr  := and_expr (("OR" | "||") and_expr)*
    and_expr := unary (("AND" | "&&")? unary)*            adjacent terms are AND-ed
    unary    := ("NOT" | "!" | "-") unary | primary
    primary  := "(" or_expr ")" | (NAME | "phrase") ":" value | word | "phrase"
    value    := "(" group ")" | "phrase" | range | (">" | ">=" | "<" | "<=") operand | word
    range    := ("[" | "{") bound "TO" bound ("]" | "}")

A backslash escapes the next character only when it is one of `\\ " * ? : ( )` or a space
(and, as the first character of a word, one of `- ! [ { < >`), so `C:\\Windows\\System32` needs
no doubling. docs/query-language.md is the analyst-facing reference.

A query is refused before it is parsed when it is longer than `QueryLimits.max_chars`, and as
soon as it has more than `QueryLimits.max_terms` terms (CASESCOPE_QUERY_MAX_*): each term is a
condition on every event it reads, and thousands of them hold the index for seconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from casescope.errors import CasescopeError
from casescope.store.query_ast import (
    MARK_STATES,
    And,
    Compare,
    Exists,
    Literal,
    Marked,
    MarkField,
    Match,
    Node,
    Not,
    Op,
    Or,
    Part,
    Pattern,
    Range,
    Text,
    Value,
    make_glob,
)

FIELD_RE = re.compile(r"[A-Za-z_@][A-Za-z0-9_.@-]*")
KEYWORDS = {"AND": "AND", "OR": "OR", "NOT": "NOT", "&&": "AND", "||": "OR"}
ESCAPABLE = frozenset('\\"*?:() ')
START_ESCAPABLE = frozenset("-![{<>")
WORD_END = frozenset('()"')
EXISTS = "_exists_"
MAX_DEPTH = 50
_RANGE_LIKE = re.compile(r"[\[{]\S*\s+TO(\s|$)")
_COMPARE_OPS = (">=", "<=", ">", "<")


def escapable(ch: str, *, first: bool) -> bool:
    """Whether a backslash before `ch` escapes it (`first`: at the start of a word)."""
    return ch in ESCAPABLE or ch.isspace() or (first and ch in START_ESCAPABLE)


class QuerySyntaxError(CasescopeError, ValueError):
    """A query cannot be understood; the message says what and where (1-based column)."""

    def __init__(self, reason: str, position: int, hint: str = "") -> None:
        message = f"{reason} at column {position + 1}" + (f"; {hint}" if hint else "")
        super().__init__(message)
        self.reason = reason
        self.position = position
        self.hint = hint

    @property
    def column(self) -> int:
        return self.position + 1


@dataclass(frozen=True)
class QueryLimits:
    """How long a query may be (CASESCOPE_QUERY_MAX_CHARS, CASESCOPE_QUERY_MAX_TERMS)."""

    max_chars: int = 10_000
    #: Terms: free-text words and phrases, `field:value`, comparisons, ranges, `_exists_`.
    #: Their cost grows faster than their number (bench/index_concurrency.py: an exact count
    #: of 1,000 terms on 1M events took seconds; docs/query-language.md, "Limits").
    max_terms: int = 200


_TERMS_HINT = "hunt a long list of indicators as IOCs instead (casescope ioc add)"


def _value_of(parts: list[Part]) -> Value:
    if any(wild for _, wild in parts):
        return Pattern(make_glob(parts))
    return Literal("".join(c for c, _ in parts))


@dataclass
class _Word:
    parts: list[Part]
    field: str | None = None  # set when the word was `name:` (a field name)


class _Parser:
    """Recursive descent over the characters; `ctx` is the field of a `field:( … )` group."""

    def __init__(self, text: str, max_terms: int) -> None:
        self.text = text
        self.i = 0
        self.depth = 0
        self.terms = 0
        self.max_terms = max_terms

    def term(self, node: Node, pos: int) -> Node:
        """Count a term (a leaf of the AST); past the limit the query is refused there."""
        self.terms += 1
        if self.terms > self.max_terms:
            raise QuerySyntaxError(
                f"the query has more than {self.max_terms:,} terms (CASESCOPE_QUERY_MAX_TERMS)",
                pos,
                _TERMS_HINT,
            )
        return node

    # -- cursor -------------------------------------------------------------------------------
    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.text[j] if j < len(self.text) else ""

    def skip_ws(self) -> bool:
        """Skip whitespace; whether there was any."""
        start = self.i
        while self.peek().isspace():
            self.i += 1
        return self.i > start

    def at_end(self) -> bool:
        self.skip_ws()
        return self.i >= len(self.text)

    def boundary(self, j: int) -> bool:
        return j >= len(self.text) or self.text[j].isspace() or self.text[j] in WORD_END

    def operator(self) -> tuple[str, int] | None:
        """The keyword operator (AND, OR, NOT, &&, ||) at the cursor and its length."""
        for word, meaning in KEYWORDS.items():
            if self.text.startswith(word, self.i) and self.boundary(self.i + len(word)):
                return meaning, len(word)
        return None

    @contextmanager
    def nested(self, pos: int) -> Iterator[None]:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QuerySyntaxError(f"the query nests deeper than {MAX_DEPTH} levels", pos)
        yield
        self.depth -= 1

    # -- expressions --------------------------------------------------------------------------
    def parse(self) -> Node | None:
        if self.at_end():
            return None
        node = self.or_expr(None)
        if not self.at_end():
            raise QuerySyntaxError("unmatched )", self.i)
        return node

    def or_expr(self, ctx: str | None) -> Node:
        children = [self.and_expr(ctx)]
        while (op := self.operator()) is not None and op[0] == "OR":
            self.binary(op[1])
            children.append(self.and_expr(ctx))
        return children[0] if len(children) == 1 else Or(tuple(children))

    def and_expr(self, ctx: str | None) -> Node:
        children = [self.unary(ctx)]
        while not self.at_end() and self.peek() != ")":
            op = self.operator()
            if op is not None and op[0] == "OR":
                break
            if op is not None and op[0] == "AND":
                self.binary(op[1])
            children.append(self.unary(ctx))
        return children[0] if len(children) == 1 else And(tuple(children))

    def binary(self, length: int) -> None:
        pos = self.i
        self.i += length
        if self.at_end() or self.peek() == ")":
            word = self.text[pos : pos + length]
            raise QuerySyntaxError(f"{word} needs something after it", pos)

    def negation(self) -> int:
        """The length of a NOT operator (`NOT`, `!`, `-` before a term) at the cursor, or 0."""
        op = self.operator()
        if op is not None and op[0] == "NOT":
            return op[1]
        following = self.peek(1)
        if self.peek() == "!" or (
            self.peek() == "-" and following and not following.isspace() and following != ")"
        ):
            return 1
        return 0

    def unary(self, ctx: str | None) -> Node:
        self.skip_ws()
        length = self.negation()
        if not length:
            return self.primary(ctx)
        pos = self.i
        self.i += length
        if self.at_end() or self.peek() == ")":
            raise QuerySyntaxError("NOT needs something after it", pos)
        with self.nested(pos):
            return Not(self.unary(ctx))

    def primary(self, ctx: str | None) -> Node:
        self.skip_ws()
        pos, ch = self.i, self.peek()
        if (op := self.operator()) is not None:
            raise QuerySyntaxError(f"{self.text[pos : pos + op[1]]} needs something before it", pos)
        if ch == ")":
            raise QuerySyntaxError("unexpected )", pos)
        if ch == "(":
            return self.group(ctx)
        if ctx is not None:
            return self.value(ctx)
        if ch == '"':
            text = self.quoted()
            if self.peek() == ":" and text:  # `"New Value":x`: a field name with a space
                self.i += 1
                return self.value(text)
            return self.term(Text(Literal(text), pos), pos)
        if ch in "[{" and _RANGE_LIKE.match(self.text, pos):
            raise QuerySyntaxError("a range needs a field name: write field:[low TO high]", pos)
        word = self.word(value=False)
        if word.field is not None:
            return self.value(word.field)
        return self.term(Text(_value_of(word.parts), pos), pos)

    def group(self, ctx: str | None) -> Node:
        start = self.i
        self.i += 1
        with self.nested(start):
            if self.at_end():
                raise QuerySyntaxError("unclosed (", start)
            if self.peek() == ")":
                raise QuerySyntaxError("empty parentheses", start)
            node = self.or_expr(ctx)
        if self.at_end():
            raise QuerySyntaxError("unclosed (", start)
        self.i += 1
        return node

    # -- field values -------------------------------------------------------------------------
    def value(self, name: str) -> Node:
        spaced = self.skip_ws()
        start, ch = self.i, self.peek()
        if not ch or ch == ")" or (spaced and self.operator() is not None):
            raise QuerySyntaxError(f"a value is missing after '{name}:'", start)
        if ch == "(":
            return self.group(name)
        return self.term(self.field_value(name, start, ch), start)

    def field_value(self, name: str, start: int, ch: str) -> Node:
        """The term of `name:` whose value starts at `start` with `ch` (not a group)."""
        if name == EXISTS:
            return self.exists(start)
        if isinstance(name, MarkField):
            return self.marked(name, start, ch)
        if ch == '"':
            return Match(name, Literal(self.quoted()), start)
        if ch in "[{":
            return self.range(name)
        for op in _COMPARE_OPS:
            if self.text.startswith(op, start):
                self.i += len(op)
                return self.compare(name, Op(op))
        return Match(name, _value_of(self.word(value=True).parts), start)

    def exists(self, start: int) -> Exists:
        if self.peek() == '"':
            name = self.quoted()
            if not name:
                raise QuerySyntaxError(f"{EXISTS} needs a field name", start)
            return Exists(name, start)
        word = self.word(value=True)
        name = "".join(c for c, _ in word.parts)
        if any(wild for _, wild in word.parts) or not FIELD_RE.fullmatch(name):
            raise QuerySyntaxError(f"{EXISTS} needs a field name", start)
        return Exists(name, start)

    def marked(self, name: MarkField, start: int, ch: str) -> Marked:
        """The value of a mark name: a word or a phrase (no ranges or comparisons)."""
        if ch in "[{<>":
            raise QuerySyntaxError(f"{name}: takes a name, not a range or a comparison", start)
        value = Literal(self.quoted()) if ch == '"' else _value_of(self.word(value=True).parts)
        if name in MARK_STATES:
            states = MARK_STATES[name]
            text = value.text.lower() if isinstance(value, Literal) else ""
            if text not in states:
                allowed = ", ".join(f"{name}:{s}" for s in states)
                raise QuerySyntaxError(f"{name}: takes one of {allowed}", start)
            value = Literal(text)
        if isinstance(value, Literal) and not value.text.strip():
            raise QuerySyntaxError(f"{name}: needs a value", start)
        return Marked(name, value, start)

    def compare(self, name: str, op: Op) -> Compare:
        self.skip_ws()
        pos, ch = self.i, self.peek()
        if not ch or ch == ")":
            raise QuerySyntaxError(f"a value is missing after '{name}:{op}'", pos)
        if ch == '"':
            return Compare(name, op, self.quoted(), pos)
        return Compare(name, op, "".join(c for c, _ in self.word(value=True).parts), pos)

    def range(self, name: str) -> Range:
        start = self.i
        include_low = self.text[start] == "["
        self.i += 1
        low, low_pos = self.bound(start)
        self.skip_ws()
        if not (
            self.text.startswith("TO", self.i) and (self.peek(2).isspace() or not self.peek(2))
        ):
            if self.i >= len(self.text):
                raise QuerySyntaxError("unclosed range", start)
            raise QuerySyntaxError("a range is written [low TO high]", self.i)
        self.i += 2
        high, high_pos = self.bound(start)
        self.skip_ws()
        close = self.peek()
        if not close:
            raise QuerySyntaxError("unclosed range", start)
        if close not in "]}":
            raise QuerySyntaxError("a range is written [low TO high]", self.i)
        self.i += 1
        return Range(name, low, high, include_low, close == "]", low_pos, high_pos)

    def bound(self, start: int) -> tuple[str | None, int]:
        self.skip_ws()
        pos = self.i
        if pos >= len(self.text):
            raise QuerySyntaxError("unclosed range", start)
        if self.peek() == '"':
            return self.quoted(), pos
        chars: list[str] = []
        while (ch := self.peek()) and not ch.isspace() and ch not in "]}":
            if ch == "\\" and self.peek(1) and escapable(self.peek(1), first=False):
                ch = self.peek(1)
                self.i += 1
            chars.append(ch)
            self.i += 1
        if not chars:
            raise QuerySyntaxError("a range is written [low TO high]", pos)
        return (None if self.text[pos : self.i] == "*" else "".join(chars)), pos

    # -- lexical ------------------------------------------------------------------------------
    def quoted(self) -> str:
        start = self.i
        self.i += 1
        chars: list[str] = []
        while (ch := self.peek()) != "":
            if ch == "\\" and self.peek(1) and escapable(self.peek(1), first=False):
                chars.append(self.peek(1))
                self.i += 2
                continue
            self.i += 1
            if ch == '"':
                return "".join(chars)
            chars.append(ch)
        hint = ""
        if '\\"' in self.text[start:]:
            hint = 'inside quotes \\" is a literal quote: end a value with a backslash as \\\\"'
        raise QuerySyntaxError("unclosed quote", start, hint)

    def word(self, *, value: bool) -> _Word:
        """A run of characters up to whitespace, a parenthesis or a quote.

        Outside field values, an unescaped `:` after a field name ends the word: the word is
        that field's name (see `separates` for the colons that do not).
        """
        start = self.i
        parts: list[Part] = []
        escaped = False
        while (ch := self.peek()) != "":
            if ch == "\\" and self.peek(1) and escapable(self.peek(1), first=not parts):
                parts.append((self.peek(1), False))
                escaped = True
                self.i += 2
                continue
            if ch.isspace() or ch in WORD_END:
                break
            if ch == ":" and not value and (":", False) not in parts and self.separates(start):
                name = self.field_name(start, escaped)
                self.i += 1
                return _Word([], _MARK_NAMES.get(name, name))
            parts.append((ch, ch in "*?"))
            self.i += 1
        if not parts:
            raise QuerySyntaxError(f"unexpected {ch!r}" if ch else "a value is missing", start)
        return _Word(parts)

    def separates(self, start: int) -> bool:
        """Whether the `:` at the cursor ends a field name.

        Only the first colon of a word can; it does not in `::` (IPv6,
        `sekurlsa::logonpasswords`), after a drive letter (`C:\\`, `C:/`) or before `//` (URLs).
        """
        following = self.peek(1)
        if following == ":":
            return False
        if self.text.startswith("//", self.i + 1):
            return False
        before = self.text[start : self.i]
        drive = len(before) == 1 and before.isascii() and before.isalpha()
        return not (drive and following in ("\\", "/"))

    def field_name(self, start: int, escaped: bool) -> str:
        name = self.text[start : self.i]
        if not name:
            raise QuerySyntaxError("a field name is missing before ':'", start)
        if escaped or not FIELD_RE.fullmatch(name):
            raise QuerySyntaxError(
                f"{name!r} is not a field name",
                start,
                "field names use only letters, digits and _ . @ -, so quote text containing ':'",
            )
        if name in KEYWORDS:
            raise QuerySyntaxError(f"{name} is an operator, not a field name", start)
        return name


_MARK_NAMES = {field.value: field for field in MarkField}


def mark_terms(node: Node | None) -> Iterator[Marked]:
    """Every mark term of a query, in order."""
    match node:
        case Marked():
            yield node
        case Not(child=child):
            yield from mark_terms(child)
        case And(children=children) | Or(children=children):
            for child in children:
                yield from mark_terms(child)


def parse_query(text: str, limits: QueryLimits | None = None) -> Node | None:
    """The AST of a query, or None for an empty one; `limits` bound its size (default:
    `QueryLimits()`)."""
    limits = limits or QueryLimits()
    if len(text) > limits.max_chars:
        raise QuerySyntaxError(
            f"the query is longer than {limits.max_chars:,} characters (CASESCOPE_QUERY_MAX_CHARS)",
            limits.max_chars,
            _TERMS_HINT,
        )
    if "\x00" in text:
        raise QuerySyntaxError("NUL character in the query", text.index("\x00"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise QuerySyntaxError("the query is not valid text", exc.start) from None
    return _Parser(text, limits.max_terms).parse()

"""Parse the analyst query language (Lucene-like) into a small AST.

    word  "a phrase"  field:value  field:"quoted value"  field:val*  field:[a TO b]
    field:>4000  _exists_:field  AND OR NOT  && || !  -term  ( … )
Adjacent terms are AND-ed; precedence NOT > AND > OR. A backslash escapes the next character
only when that character is special (`\\ " * ? : ( ) [ ] { }` or space), so a Windows path
such as C:\\Windows\\System32 needs no doubling. docs/query-language.md is the reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SPECIAL = set('\\"*?:()[]{} ')
FIELD_RE = re.compile(r"^[A-Za-z_@][A-Za-z0-9_.@-]*$")
KEYWORDS = {"AND": "AND", "&&": "AND", "OR": "OR", "||": "OR", "NOT": "NOT", "!": "NOT"}


class QuerySyntaxError(ValueError):
    """A query an analyst typed cannot be understood; the message says where and why."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at column {position + 1}")
        self.position = position


@dataclass(frozen=True)
class Value:
    text: str  # unescaped
    quoted: bool = False
    wildcard: bool = False  # has an unescaped * or ? (pattern kept in `pattern`)
    pattern: str = ""  # text with wildcards as * and ?, literals escaped with \


@dataclass(frozen=True)
class Term:
    field: str | None
    op: str  # "eq", "range", "gt", "gte", "lt", "lte", "exists"
    value: Value | None = None
    upper: Value | None = None
    include_lower: bool = True
    include_upper: bool = True


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


Node = Term | Not | And | Or


@dataclass(frozen=True)
class Token:
    kind: str  # WORD, PHRASE, LPAREN, RPAREN, AND, OR, NOT, MINUS, RANGE, FIELD
    value: object
    pos: int


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def tokens(self) -> list[Token]:
        out: list[Token] = []
        while True:
            while self.i < len(self.text) and self.text[self.i].isspace():
                self.i += 1
            if self.i >= len(self.text):
                return out
            out.append(self._next(after_field=bool(out) and out[-1].kind == "FIELD"))

    def _next(self, *, after_field: bool) -> Token:
        ch, pos = self.text[self.i], self.i
        if ch in "()":
            self.i += 1
            return Token("LPAREN" if ch == "(" else "RPAREN", ch, pos)
        if ch == '"':
            return Token("PHRASE", self._phrase(), pos)
        if ch in "[{":
            return Token("RANGE", self._range(), pos)
        if ch == "-" and self._is_negation(pos):
            self.i += 1
            return Token("NOT", "-", pos)
        word = self._word(allow_colon=after_field)
        if after_field:
            return Token("WORD", word, pos)
        if word.text in KEYWORDS and not word.quoted and word.pattern == word.text:
            return Token(KEYWORDS[word.text], word.text, pos)
        if self.i < len(self.text) and self.text[self.i] == ":":
            self.i += 1
            return Token("FIELD", word.text, pos)
        return Token("WORD", word, pos)

    def _phrase(self) -> Value:
        start = self.i
        self.i += 1
        chars: list[str] = []
        while self.i < len(self.text):
            ch = self.text[self.i]
            if ch == "\\" and self.i + 1 < len(self.text) and self.text[self.i + 1] in SPECIAL:
                chars.append(self.text[self.i + 1])
                self.i += 2
                continue
            if ch == '"':
                self.i += 1
                text = "".join(chars)
                return Value(text, quoted=True, pattern=_escape_pattern(text))
            chars.append(ch)
            self.i += 1
        raise QuerySyntaxError("unclosed quote", start)

    def _is_negation(self, pos: int) -> bool:
        """A `-` directly before a term, at the start or after a space or `(`."""
        followed = pos + 1 < len(self.text) and not self.text[pos + 1].isspace()
        preceded = pos == 0 or self.text[pos - 1].isspace() or self.text[pos - 1] == "("
        return followed and preceded

    def _ends_field(self, text: list[str]) -> bool:
        """Whether the `:` at the cursor ends a field name (`C:\\x` is a path, not a field)."""
        if not text:
            return True
        drive_path = len(text) == 1 and self.text[self.i + 1 : self.i + 2] == "\\"
        return bool(FIELD_RE.match("".join(text))) and not drive_path

    def _word(self, *, allow_colon: bool) -> Value:
        start = self.i
        text: list[str] = []
        pattern: list[str] = []
        wildcard = False
        while self.i < len(self.text):
            ch = self.text[self.i]
            if ch == "\\" and self.i + 1 < len(self.text) and self.text[self.i + 1] in SPECIAL:
                literal = self.text[self.i + 1]
                text.append(literal)
                pattern.append(_escape_pattern(literal))
                self.i += 2
                continue
            if ch.isspace() or ch in '()"':
                break
            if ch == ":" and not allow_colon and self._ends_field(text):
                break
            if ch in "*?":
                wildcard = True
                pattern.append(ch)
            else:
                pattern.append(_escape_pattern(ch))
            text.append(ch)
            self.i += 1
        if not text:
            raise QuerySyntaxError(f"unexpected {self.text[start]!r}", start)
        return Value("".join(text), wildcard=wildcard, pattern="".join(pattern))

    def _range(self) -> tuple[Value, Value, bool, bool]:
        start = self.i
        include_lower = self.text[self.i] == "["
        close = self.text.find("]" if include_lower else "}", self.i)
        close_other = self.text.find("}" if include_lower else "]", self.i)
        ends = [c for c in (close, close_other) if c != -1]
        if not ends:
            raise QuerySyntaxError("unclosed range", start)
        end = min(ends)
        parts = self.text[self.i + 1 : end].split()
        if len(parts) != 3 or parts[1] != "TO":
            raise QuerySyntaxError("a range is written [low TO high]", start)
        self.i = end + 1
        low, high = (Value(p, pattern=_escape_pattern(p)) for p in (parts[0], parts[2]))
        return low, high, include_lower, self.text[end] == "]"


def _escape_pattern(text: str) -> str:
    return "".join("\\" + c if c in "\\*?" else c for c in text)


class _Parser:
    def __init__(self, tokens: list[Token], length: int) -> None:
        self.tokens = tokens
        self.i = 0
        self.length = length

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def parse(self) -> Node | None:
        if not self.tokens:
            return None
        node = self.or_expr()
        if (token := self.peek()) is not None:
            raise QuerySyntaxError(f"unexpected {token.value!r}", token.pos)
        return node

    def or_expr(self) -> Node:
        children = [self.and_expr()]
        while (token := self.peek()) is not None and token.kind == "OR":
            self.take()
            children.append(self.and_expr())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def and_expr(self) -> Node:
        children = [self.not_expr()]
        while (token := self.peek()) is not None and token.kind not in ("OR", "RPAREN"):
            if token.kind == "AND":
                self.take()
            children.append(self.not_expr())
        return children[0] if len(children) == 1 else And(tuple(children))

    def not_expr(self) -> Node:
        token = self.peek()
        if token is not None and token.kind == "NOT":
            self.take()
            return Not(self.not_expr())
        return self.primary()

    def primary(self) -> Node:
        token = self.peek()
        if token is None:
            raise QuerySyntaxError("the query ends too early", self.length)
        if token.kind == "LPAREN":
            self.take()
            node = self.or_expr()
            closing = self.peek()
            if closing is None or closing.kind != "RPAREN":
                raise QuerySyntaxError("missing )", token.pos)
            self.take()
            return node
        if token.kind == "FIELD":
            self.take()
            return self.field_term(str(token.value), token.pos)
        if token.kind in ("WORD", "PHRASE"):
            self.take()
            return Term(None, "eq", token.value)  # type: ignore[arg-type]
        raise QuerySyntaxError(f"unexpected {token.value!r}", token.pos)

    def field_term(self, field: str, pos: int) -> Term:
        token = self.peek()
        if token is None or token.kind not in ("WORD", "PHRASE", "RANGE"):
            raise QuerySyntaxError(f"{field}: needs a value", pos)
        self.take()
        if token.kind == "RANGE":
            low, high, inc_low, inc_high = token.value  # type: ignore[misc]
            return Term(field, "range", low, high, inc_low, inc_high)
        value: Value = token.value  # type: ignore[assignment]
        if field == "_exists_":
            if not FIELD_RE.match(value.text):
                raise QuerySyntaxError("_exists_ needs a field name", token.pos)
            return Term(value.text, "exists")
        if token.kind == "WORD":
            for prefix, op in ((">=", "gte"), ("<=", "lte"), (">", "gt"), ("<", "lt")):
                if value.text.startswith(prefix) and len(value.text) > len(prefix):
                    rest = value.text[len(prefix) :]
                    return Term(field, op, Value(rest, pattern=_escape_pattern(rest)))
        return Term(field, "eq", value)


def parse_query(text: str) -> Node | None:
    """The AST of a query, or None for an empty one."""
    if "\x00" in text:
        raise QuerySyntaxError("NUL character in query", text.index("\x00"))
    return _Parser(_Lexer(text).tokens(), len(text)).parse()

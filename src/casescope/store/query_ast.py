"""The query language's syntax tree: what `query_parse` builds and `query_sql`, `pills`,
highlighting and mark lookups read. Values keep wildcards apart from escaped characters."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from enum import StrEnum
from typing import Any


def _pos() -> Any:
    """A source position: kept for error messages, ignored when comparing ASTs."""
    return dc_field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class Literal:
    """Text matched as written (ignoring case)."""

    text: str


@dataclass(frozen=True)
class Pattern:
    """Text with wildcards: in `glob`, `*` and `?` are wildcards and `\\` escapes `* ? \\`."""

    glob: str


Value = Literal | Pattern


@dataclass(frozen=True)
class Text:
    """Free text, searched in every value of the event."""

    value: Value
    pos: int = _pos()


@dataclass(frozen=True)
class Match:
    """`field:value`: equal to a literal, or matching a pattern."""

    field: str
    value: Value
    pos: int = _pos()


class Op(StrEnum):
    GT = ">"
    GTE = ">="
    LT = "<"
    LTE = "<="


@dataclass(frozen=True)
class Compare:
    """`field:>value` and friends."""

    field: str
    op: Op
    value: str
    pos: int = _pos()


@dataclass(frozen=True)
class Range:
    """`field:[low TO high]`; a bound of None is open (`*`)."""

    field: str
    low: str | None
    high: str | None
    include_low: bool = True
    include_high: bool = True
    low_pos: int = _pos()
    high_pos: int = _pos()


@dataclass(frozen=True)
class Exists:
    """`_exists_:field`."""

    field: str
    pos: int = _pos()


class MarkField(StrEnum):
    """Names that ask about the analysts' marks and notes, not the event's fields (written
    bare and in lower case; a quoted name, `"tag":x`, is the event field of that name)."""

    TAG = "tag"  # tag:NAME, tag:lateral*, tag:* (any tag)
    IS = "is"  # is:starred, is:hidden
    HAS = "has"  # has:note, has:tag
    NOTE = "note"  # note:TEXT: a note contains the text (any case; wildcards allowed)


class MarkState(StrEnum):
    """The values `is:` and `has:` take."""

    STARRED = "starred"
    HIDDEN = "hidden"
    NOTE = "note"
    TAG = "tag"


#: Which states each of `is:` and `has:` takes.
MARK_STATES = {
    MarkField.IS: (MarkState.STARRED, MarkState.HIDDEN),
    MarkField.HAS: (MarkState.NOTE, MarkState.TAG),
}


@dataclass(frozen=True)
class Marked:
    """`tag:NAME`, `is:starred`, `has:note`, `note:TEXT`: events by the marks and notes that
    analysts put on them (kept beside the index, not in it)."""

    field: MarkField
    value: Value
    pos: int = _pos()


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


Node = Text | Match | Compare | Range | Exists | Marked | Not | And | Or
Part = tuple[str, bool]  # one character of a value, and whether it is a wildcard


def make_glob(parts: list[Part]) -> str:
    """Encode characters and wildcards as a `Pattern.glob`."""
    return "".join(c if wild or c not in "*?\\" else "\\" + c for c, wild in parts)


def glob_parts(glob: str) -> list[Part]:
    """Decode a `Pattern.glob` into characters and wildcards."""
    parts: list[Part] = []
    i = 0
    while i < len(glob):
        if glob[i] == "\\" and i + 1 < len(glob):
            parts.append((glob[i + 1], False))
            i += 2
            continue
        parts.append((glob[i], glob[i] in "*?"))
        i += 1
    return parts


def value_parts(value: Value) -> list[Part]:
    """The characters of a value, wildcards marked."""
    if isinstance(value, Literal):
        return [(c, False) for c in value.text]
    return glob_parts(value.glob)

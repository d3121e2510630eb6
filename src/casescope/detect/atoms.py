"""Atoms: the leaves of a compiled rule, one test of one field, interned per rule set.

pySigma has already applied the value modifiers (contains, startswith, endswith, all,
windash, base64, base64offset, utf16*, wide, cidr…) by the time a rule reaches us; what is
left are strings with wildcards, numbers, booleans, regular expressions, CIDR ranges,
comparisons, null/exists tests and field references. Each becomes one or more atoms:

* literal atoms (`EQ`, `PREFIX`, `SUFFIX`, `CONTAINS`) hold lowercased text and are answered
  for a whole field at once by one Aho-Corasick pass (see `literals.py`);
* `GLOB` atoms are wildcard patterns (a `?`, or a `*` inside the text, or `cased`) turned
  into an anchored RE2 expression; their longest literal piece is a `CONTAINS` *hint* atom,
  so the expression only runs on values that contain it;
* everything else (`REGEX`, `CMP`, `EXISTS`, `MISSING`, `NULL`, `EMPTY`, `FIELDREF`) is
  evaluated on the field's distinct values or rows (see `evaluate.py`).

Field names are resolved case-insensitively (like SQLite-based Sigma tools): an atom's
`field` is a *field key*, the lowercased Sigma name, or a core column key (`@event_id`…).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from casescope.errors import CasescopeError

#: Sigma field name (lowercased) -> key of a core column of the event schema.
CORE_KEYS = {
    "eventid": "@event_id",
    "channel": "@channel",
    "provider_name": "@provider",
    "computer": "@computer",
    "eventrecordid": "@record_id",
    "level": "@level",
}
#: Pseudo-field of keyword (field-less) searches: every value in the event's `fields`.
KEYWORDS = "@keywords"


class CompileError(CasescopeError):
    """A rule uses something the matcher cannot express; kept with the rule as its reason."""


class Kind(StrEnum):
    EQ = "eq"
    PREFIX = "prefix"
    SUFFIX = "suffix"
    CONTAINS = "contains"
    GLOB = "glob"  # anchored wildcard pattern, RE2 (text), optional hint atom
    REGEX = "regex"  # |re, unanchored, RE2 or Python `re` (python=True)
    CMP = "cmp"  # numeric comparison: op in lt le gt ge
    EXISTS = "exists"
    MISSING = "missing"
    NULL = "null"  # missing or empty
    EMPTY = "empty"  # present and ""
    FIELDREF = "fieldref"  # equal to (op: eq/prefix/suffix/contains) another field


LITERAL_KINDS = (Kind.EQ, Kind.PREFIX, Kind.SUFFIX, Kind.CONTAINS)
#: Kinds answered per distinct value of a field (then gathered per row).
LUT_KINDS = (Kind.GLOB, Kind.REGEX, Kind.CMP, Kind.EMPTY)


def field_key(name: str) -> str:
    """The key an atom uses for a Sigma field name (case-insensitive)."""
    lowered = name.lower()
    return CORE_KEYS.get(lowered, lowered)


class Atom(NamedTuple):
    """One test of one field (a named tuple: hashable, and fast to pickle by the 10,000)."""

    field: str
    kind: Kind
    text: str = ""
    cased: bool = False
    python: bool = False  # REGEX only: RE2 cannot run it, Python's `re` does
    op: str = ""
    number: float = 0.0
    ref: str = ""  # FIELDREF: the other field's key
    hint: int = -1  # GLOB: id of a CONTAINS atom every match must satisfy


@dataclass
class AtomTable:
    """Every distinct atom of a rule set, by id."""

    atoms: list[Atom] = field(default_factory=list)
    ids: dict[Atom, int] = field(default_factory=dict)

    def intern(self, atom: Atom) -> int:
        if len(self.ids) != len(self.atoms):  # after unpickling: rebuild the lookup
            self.ids = {a: i for i, a in enumerate(self.atoms)}
        found = self.ids.get(atom)
        if found is None:
            found = self.ids[atom] = len(self.atoms)
            self.atoms.append(atom)
        return found

    def __getstate__(self) -> dict:
        return {"atoms": self.atoms, "ids": {}}  # the lookup is rebuilt when needed

    def __len__(self) -> int:
        return len(self.atoms)


_RE2_SAFE = re.compile(r"[A-Za-z0-9_]")


def escape(text: str) -> str:
    """Escape a literal for both RE2 and Python `re` (ASCII punctuation as \\xHH)."""
    return "".join(c if ord(c) > 127 or _RE2_SAFE.match(c) else f"\\x{ord(c):02x}" for c in text)


def check_regex(pattern: str) -> bool:
    """True when RE2 (pyarrow) accepts the pattern; False when only Python's `re` does."""
    try:
        pc.match_substring_regex(pa.array([""], pa.string()), pattern)
        return True
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    try:
        re.compile(pattern)
    except re.error as exc:
        raise CompileError(f"invalid regular expression {pattern!r}: {exc}") from None
    return False

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

Field names are resolved by *key* (`name_key`): case, whitespace and underscores do not
count, so a rule's `NewValue`, `New_Value` or `newvalue` reads the `New Value` Windows
Defender writes (SigmaHQ spells Defender's names both ways: `NewValue`, `Feature_Name`;
Hayabusa's aliases remove the space and keep rules working on both). The event keeps its
names as written; only matching goes through keys. A rule may also name a field by its
full Hayabusa/Chainsaw *eventkey* (`Event.EventData.New Value`, `Event.System.EventID`,
`Event.UserData.LogFileCleared.SubjectUserName`, `Event.System.Provider_attributes.Name`):
`field_key` reduces it to the name the parser gives the field. An atom's `field` is a key,
or a core column key (`@event_id`…).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from casescope.errors import CasescopeError

#: Field key (`name_key`) -> key of a core column of the event schema.
CORE_KEYS = {
    "eventid": "@event_id",
    "channel": "@channel",
    "providername": "@provider",
    "computer": "@computer",
    "eventrecordid": "@record_id",
    "level": "@level",
}
#: Eventkey prefixes (lowercased) the parser's flat names leave out; `Event.UserData.` also
#: drops the wrapper element that follows it (`LogFileCleared.`), as the parser does.
_EVENTKEY_PREFIXES = ("event.eventdata.", "event.system.")
_USERDATA_PREFIX = "event.userdata."
_WHOLE_DATA = ("event.eventdata", "event.userdata")
_ATTRIBUTES = "_attributes."  # Hayabusa's `Provider_attributes.Name`: the parser's `.Name`
_IGNORED = str.maketrans("", "", " \t\r\n_")
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
    CMP = "cmp"  # numeric comparison: op is a CompareOp
    EXISTS = "exists"
    MISSING = "missing"
    NULL = "null"  # missing or empty
    EMPTY = "empty"  # present and ""
    FIELDREF = "fieldref"  # related to another field's value: op is a FieldRefOp


class CompareOp(StrEnum):
    """How a CMP atom compares the field's number with its own."""

    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"


class FieldRefOp(StrEnum):
    """How a FIELDREF atom's field relates to the other field: equal to it, or starts with,
    ends with or contains it."""

    EQ = "eq"
    PREFIX = "prefix"
    SUFFIX = "suffix"
    CONTAINS = "contains"


LITERAL_KINDS = (Kind.EQ, Kind.PREFIX, Kind.SUFFIX, Kind.CONTAINS)
#: Kinds answered per distinct value of a field (then gathered per row).
LUT_KINDS = (Kind.GLOB, Kind.REGEX, Kind.CMP, Kind.EMPTY)


def name_key(name: str) -> str:
    """The key a field name matches by: lowercased, without whitespace or underscores."""
    return name.lower().translate(_IGNORED)


def field_key(name: str) -> str:
    """The key an atom uses for a rule's field name (an eventkey reduced to its field).

    An EventData or UserData eventkey names a field of the event's map even when its name
    is a core column's (UserData's `LogFileCleared.Channel` is the cleared log, not the
    event's channel); the whole `Event.EventData` is every value of the map (keywords)."""
    lowered = name.lower()
    if lowered in _WHOLE_DATA:
        return KEYWORDS
    data = lowered.startswith((_USERDATA_PREFIX, _EVENTKEY_PREFIXES[0]))
    if lowered.startswith(_USERDATA_PREFIX):
        lowered = lowered[len(_USERDATA_PREFIX) :].partition(".")[2] or lowered
    for prefix in _EVENTKEY_PREFIXES:
        if lowered.startswith(prefix):
            lowered = lowered[len(prefix) :]
            break
    if lowered == "provider_attributes.name":
        lowered = "provider_name"
    key = name_key(lowered.replace(_ATTRIBUTES, "."))
    return key if data else CORE_KEYS.get(key, key)


class Atom(NamedTuple):
    """One test of one field (a named tuple: hashable, and fast to pickle by the 10,000)."""

    field: str
    kind: Kind
    text: str = ""
    cased: bool = False
    python: bool = False  # REGEX only: RE2 cannot run it, Python's `re` does
    op: str = ""  # CMP: a CompareOp; FIELDREF: a FieldRefOp
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

"""Compile a pySigma condition (after its processing pipeline) into a small boolean tree.

Leaves are *atoms* — one test of one field, e.g. `Image` ends with `\\cmd.exe` — interned in
an `AtomTable` shared by the whole rule set, so an atom that many rules use is evaluated
once per batch. pySigma has already applied the value modifiers (contains, startswith,
windash, base64offset, …): what remains are strings with wildcards, numbers, regular
expressions, CIDR ranges, comparisons, null/exists tests and field references. Sigma
matching is case-insensitive unless the value is `cased`.

Tree nodes: ("atom", id) | ("and", (nodes…)) | ("or", (nodes…)) | ("not", node).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import ahocorasick
import pyarrow as pa
import pyarrow.compute as pc
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SpecialChars,
)

KEYWORDS = "*"  # pseudo-field: every value of the event
_OPS = {
    SigmaCompareExpression.CompareOperators.LT: "lt",
    SigmaCompareExpression.CompareOperators.LTE: "le",
    SigmaCompareExpression.CompareOperators.GT: "gt",
    SigmaCompareExpression.CompareOperators.GTE: "ge",
}

Node = tuple


class CompileError(Exception):
    """A rule uses something the matcher cannot express; kept with the rule as its reason."""


@dataclass(frozen=True)
class Atom:
    field: str
    kind: str  # eq prefix suffix contains regex any null exists missing cmp fieldref
    arg: str = ""
    cased: bool = False
    op: str = ""
    number: float = 0.0


@dataclass
class AtomTable:
    atoms: list[Atom] = field(default_factory=list)
    ids: dict[Atom, int] = field(default_factory=dict)

    _literals: dict[str, list[str]] = field(default_factory=dict)
    _automata: dict[str, ahocorasick.Automaton | None] = field(default_factory=dict)

    def intern(self, atom: Atom) -> Node:
        if atom not in self.ids:
            self.ids[atom] = len(self.atoms)
            self.atoms.append(atom)
            self._literals.clear()
            self._automata.clear()
        return ("atom", self.ids[atom])

    def __getstate__(self) -> dict:
        """Pickle without the automata (C objects); they are rebuilt on first use."""
        return {"atoms": self.atoms, "ids": self.ids, "_literals": {}, "_automata": {}}

    def automaton(self, name: str) -> ahocorasick.Automaton | None:
        """An Aho-Corasick automaton over the field's literal atom texts, built once."""
        if name not in self._automata:
            literals = self.literals(name)
            automaton = None
            if literals:
                automaton = ahocorasick.Automaton()
                for text in literals:
                    automaton.add_word(text, text)
                automaton.make_automaton()
            self._automata[name] = automaton
        return self._automata[name]

    def literals(self, name: str) -> list[str]:
        """The lowercase texts of every literal atom on field `name` (for prefiltering)."""
        if not self._literals:
            by_field: dict[str, set[str]] = {}
            for atom in self.atoms:
                literal = atom.kind in ("eq", "prefix", "suffix", "contains")
                if literal and atom.arg and not atom.cased:
                    by_field.setdefault(atom.field, set()).add(atom.arg)
            self._literals = {f: sorted(v) for f, v in by_field.items()}
        return self._literals.get(name, [])


def _string_atom(name: str, value: SigmaString, cased: bool) -> Atom:
    parts = value.s
    star = SpecialChars.WILDCARD_MULTI
    norm = (lambda t: t) if cased else str.lower
    text = norm("".join(p for p in parts if isinstance(p, str)))
    if all(isinstance(p, str) for p in parts):
        return Atom(name, "eq", text, cased)
    if len(parts) == 1 and parts[0] == star:
        return Atom(name, "any")
    if len(parts) == 2 and parts[0] == star and isinstance(parts[1], str):
        return Atom(name, "suffix", text, cased)
    if len(parts) == 2 and parts[1] == star and isinstance(parts[0], str):
        return Atom(name, "prefix", text, cased)
    if len(parts) == 3 and parts[0] == star == parts[2] and isinstance(parts[1], str):
        return Atom(name, "contains", text, cased)
    regex = "".join(
        re.escape(norm(p)) if isinstance(p, str) else (".*" if p == star else ".") for p in parts
    )
    return Atom(name, "regex", f"(?s)^{regex}$", cased)


def check_regex(pattern: str) -> None:
    """RE2 (pyarrow) has no look-around or back-references: refuse those at compile time."""
    try:
        pc.match_substring_regex(pa.array([""]), pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise CompileError(f"regex {pattern!r} is not supported: {exc}") from None


def _regex_atom(name: str, value: SigmaRegularExpression) -> Atom:
    names = {f.name for f in value.flags}
    flags = "".join(
        c for n, c in (("IGNORECASE", "i"), ("MULTILINE", "m"), ("DOTALL", "s")) if n in names
    )
    regexp = str(value.regexp)
    pattern = f"(?{flags}){regexp}" if flags else regexp
    check_regex(pattern)
    return Atom(name, "regex", pattern, cased=True)


def _value(name: str, value: object, table: AtomTable) -> Node:
    if isinstance(value, SigmaExpansion):  # e.g. windash: any of the alternatives
        return ("or", tuple(_value(name, v, table) for v in value.values))
    if isinstance(value, SigmaString):
        atom = _string_atom(name, value, isinstance(value, SigmaCasedString))
        if atom.kind == "regex":
            check_regex(atom.arg)
        return table.intern(atom)
    if isinstance(value, SigmaNumber | SigmaBool):
        text = str(value.number if isinstance(value, SigmaNumber) else value.boolean).lower()
        return table.intern(Atom(name, "eq", text))
    if isinstance(value, SigmaRegularExpression):
        return table.intern(_regex_atom(name, value))
    if isinstance(value, SigmaCIDRExpression):
        prefixes = [str(p).rstrip("*").lower() for p in value.expand(wildcard="*")]
        return ("or", tuple(table.intern(Atom(name, "prefix", p)) for p in prefixes))
    if isinstance(value, SigmaNull):
        return table.intern(Atom(name, "null"))
    if isinstance(value, SigmaExists):
        return table.intern(Atom(name, "exists" if value.exists else "missing"))
    if isinstance(value, SigmaCompareExpression):
        number = float(value.number.number)
        return table.intern(Atom(name, "cmp", op=_OPS[value.op], number=number))
    if isinstance(value, SigmaFieldReference):
        return table.intern(Atom(name, "fieldref", value.field))
    raise CompileError(f"value type {type(value).__name__} is not supported")


def _keyword(value: object, table: AtomTable) -> Node:
    if isinstance(value, SigmaExpansion):
        return ("or", tuple(_keyword(v, table) for v in value.values))
    if isinstance(value, SigmaString):
        atom = _string_atom(KEYWORDS, value, cased=False)
        if atom.kind == "regex":  # a keyword matches anywhere in the event
            pattern = atom.arg.removeprefix("(?s)^").removesuffix("$")
            check_regex(pattern)
            return table.intern(Atom(KEYWORDS, "regex", pattern))
        return table.intern(Atom(KEYWORDS, "contains", atom.arg))
    if isinstance(value, SigmaNumber):
        return table.intern(Atom(KEYWORDS, "contains", str(value.number)))
    raise CompileError(f"keyword of type {type(value).__name__} is not supported")


def compile_condition(node: object, table: AtomTable) -> Node:
    if isinstance(node, ConditionAND):
        return ("and", tuple(compile_condition(a, table) for a in node.args))
    if isinstance(node, ConditionOR):
        return ("or", tuple(compile_condition(a, table) for a in node.args))
    if isinstance(node, ConditionNOT):
        return ("not", compile_condition(node.args[0], table))
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _value(node.field, node.value, table)
    if isinstance(node, ConditionValueExpression):
        return _keyword(node.value, table)
    raise CompileError(f"condition element {type(node).__name__} is not supported")


def required(node: Node) -> list[frozenset[int]]:
    """Necessary conditions of a tree: clauses of atom ids, at least one of each must hold.

    AND keeps all its children's clauses; OR needs one child, so it yields one clause made of
    the smallest clause of every child (none if any child has none); NOT yields none. A
    batch in which every atom of some clause is known absent cannot match the rule.
    """
    kind = node[0]
    if kind == "atom":
        return [frozenset((node[1],))]
    if kind == "not":
        return []
    if kind == "and":
        return [clause for child in node[1] for clause in required(child)]
    smallest = []
    for child in node[1]:
        clauses = required(child)
        if not clauses:
            return []
        smallest.append(min(clauses, key=len))
    return [frozenset().union(*smallest)]


def tree_fields(node: Node, table: AtomTable, out: set[str]) -> set[str]:
    """Every field a tree reads."""
    if node[0] == "atom":
        atom = table.atoms[node[1]]
        out.add(atom.field)
        if atom.kind == "fieldref":
            out.add(atom.arg)
    elif node[0] == "not":
        tree_fields(node[1], table, out)
    else:
        for child in node[1]:
            tree_fields(child, table, out)
    return out


def constraints(node: object) -> tuple[set[int] | None, set[str] | None]:
    """EventIDs and Channels a rule requires (None: unconstrained), from top-level ANDs."""
    event_ids: set[int] | None = None
    channels: set[str] | None = None
    items = node.args if isinstance(node, ConditionAND) else [node]
    for item in items:
        found = _equalities(item)
        if found is None:
            continue
        name, values = found
        if name == "EventID" and all(isinstance(v, int) for v in values):
            event_ids = set(values) if event_ids is None else event_ids & set(values)
        elif name == "Channel" and all(isinstance(v, str) for v in values):
            channels = set(values) if channels is None else channels & set(values)
    return event_ids, channels


def _equalities(node: object) -> tuple[str, list[object]] | None:
    """`F = a` or `F = a OR F = b …` as (F, [a, b, …])."""
    if isinstance(node, ConditionFieldEqualsValueExpression):
        value = node.value
        if isinstance(value, SigmaNumber):
            return node.field, [int(value.number)]
        if isinstance(value, SigmaString) and value.s and all(isinstance(p, str) for p in value.s):
            return node.field, [str(value).lower()]
        return None
    if isinstance(node, ConditionOR):
        parts = [_equalities(a) for a in node.args]
        if parts and all(p is not None for p in parts) and len({p[0] for p in parts}) == 1:
            return parts[0][0], [v for p in parts for v in p[1]]  # type: ignore[index]
    return None

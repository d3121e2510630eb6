"""The rule set's index as numpy arrays: atoms, necessary clauses, literal table, programs.

Every rule has *necessary clauses* (see `compile.required`): sets of atoms of which at least
one must hold somewhere in the batch for the rule to match. A batch computes which atoms
are *possible* — literal atoms exactly, from one Aho-Corasick pass per field (this is the
(channel, event id) index, generalised to every field), atoms on fields the batch lacks as
impossible, the rest as possible — and a rule stays a candidate while every one of its
clauses has a possible atom: two `reduceat`s decide that for all rules at once.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import pyarrow as pa

from casescope.detect.atoms import KEYWORDS, LITERAL_KINDS, Atom, AtomTable, Kind
from casescope.detect.compile import required, tree_atoms
from casescope.detect.literals import LiteralTable
from casescope.detect.program import Programs, ranges
from casescope.detect.rules import CompiledRule

MAX_CLAUSES = 8  # per rule: the shortest ones are the most selective


class Code(IntEnum):
    """How an atom is evaluated on a batch (see `evaluate.py`)."""

    LITERAL = 0  # hit keys of the Aho-Corasick pass
    EXISTS = 1
    MISSING = 2
    NULL = 3
    EMPTY = 4
    VALUES = 5  # GLOB, REGEX, CMP: a kernel on the distinct values it needs
    FIELDREF = 6
    KEYWORD = 7  # any kind on the keyword pseudo-field: per-row mask


_CODES = {
    Kind.EXISTS: Code.EXISTS,
    Kind.MISSING: Code.MISSING,
    Kind.NULL: Code.NULL,
    Kind.EMPTY: Code.EMPTY,
    Kind.FIELDREF: Code.FIELDREF,
}


def _code(atom: Atom) -> Code:
    if atom.field == KEYWORDS:
        return Code.KEYWORD
    if atom.kind in LITERAL_KINDS:
        return Code.LITERAL
    return _CODES.get(atom.kind, Code.VALUES)


class RulePlan:
    """Clause arrays, atom arrays, the literal table and the programs of a rule set."""

    def __init__(self, rules: list[CompiledRule], table: AtomTable) -> None:
        atoms = table.atoms
        self.num_atoms = len(atoms)
        self.rule_ids = pa.array([rule.id for rule in rules], pa.string())
        self._atoms(atoms)
        self._clauses(rules)
        self.literals = LiteralTable(atoms, self.field_id)
        self.trees = [rule.tree for rule in rules]
        self.programs = Programs(self.trees)
        keyword = self.field_id.get(KEYWORDS, -1)
        self.rule_keywords = np.array(
            [keyword >= 0 and keyword in self._rule_fields(rule, atoms) for rule in rules],
            dtype=bool,
        )

    def _atoms(self, atoms: list[Atom]) -> None:
        keys: dict[str, int] = {}
        for atom in atoms:
            keys.setdefault(atom.field, len(keys))
            if atom.ref:
                keys.setdefault(atom.ref, len(keys))
        self.field_id = keys
        self.field_keys = list(keys)
        # arrays over atoms, plus the always-possible pseudo-atom of rules without clauses
        self.atom_field = np.array([keys[a.field] for a in atoms] + [-1], dtype=np.int64)
        self.atom_ref = np.array([keys.get(a.ref, -1) for a in atoms] + [-1], dtype=np.int64)
        self.atom_code = np.array([_code(a) for a in atoms] + [Code.VALUES], dtype=np.int8)
        self.atom_hint = np.array([a.hint for a in atoms] + [-1], dtype=np.int64)
        literal = [a.kind in LITERAL_KINDS for a in atoms]
        self.atom_literal = np.array([*literal, False], dtype=bool)  # by kind, any field
        absent_true = [a.kind in (Kind.MISSING, Kind.NULL) for a in atoms]
        self.atom_absent_true = np.array([*absent_true, True], dtype=bool)
        glob = self.atom_hint >= 0
        # the atom whose rows stand for an atom's rows when anchoring (a glob: its hint)
        self.anchor_atom = np.where(glob, self.atom_hint, np.arange(len(atoms) + 1))
        self.glob_ids = np.flatnonzero(glob)
        self.keyword_atoms = np.flatnonzero(self.atom_code == Code.KEYWORD)
        self.fieldref_ids = np.flatnonzero(self.atom_code == Code.FIELDREF)
        # possible before any literal pass: when the atom's field is absent from the batch,
        # and when it is present (literal atoms wait for a hit)
        keyword = self.atom_code == Code.KEYWORD
        self.absent_possible = self.atom_absent_true | keyword
        self.present_possible = (self.atom_code != Code.LITERAL) | keyword
        # atom ids grouped by field (CSR), for one slice per present field
        order = np.argsort(self.atom_field[:-1], kind="stable")
        self.field_atoms = order
        self.field_atom_starts = np.searchsorted(
            self.atom_field[:-1][order], np.arange(len(keys) + 1)
        )

    def _clauses(self, rules: list[CompiledRule]) -> None:
        sentinel = self.num_atoms
        flat: list[int] = []
        clause_starts: list[int] = []
        rule_starts: list[int] = []
        for rule in rules:
            rule_starts.append(len(clause_starts))
            clauses = sorted(required(rule.tree), key=len)[:MAX_CLAUSES]
            for clause in clauses or [frozenset((sentinel,))]:
                clause_starts.append(len(flat))
                flat.extend(sorted(clause))
        self.clause_atoms = np.array(flat, dtype=np.int64)
        self.clause_starts = np.array(clause_starts, dtype=np.int64)
        self.clause_bounds = np.append(self.clause_starts, len(flat))
        self.rule_bounds = np.append(np.array(rule_starts, dtype=np.int64), len(clause_starts))

    def _rule_fields(self, rule: CompiledRule, atoms: list[Atom]) -> set[int]:
        return {self.field_id[atoms[a].field] for a in tree_atoms(rule.tree, set())}

    def candidates(self, possible: np.ndarray) -> np.ndarray:
        """Boolean per rule: every necessary clause has a possible atom."""
        if len(self.rule_bounds) < 2:
            return np.zeros(0, dtype=bool)
        clause_ok = np.logical_or.reduceat(possible[self.clause_atoms], self.clause_starts)
        return np.logical_and.reduceat(clause_ok, self.rule_bounds[:-1])

    def candidates_of(self, possible: np.ndarray, rules: np.ndarray) -> np.ndarray:
        """`candidates(possible)[rules]`, computed on those rules' clauses only."""
        if not len(rules):
            return np.zeros(0, dtype=bool)
        lo = self.rule_bounds[rules]
        count = self.rule_bounds[rules + 1] - lo
        _, clause = ranges(lo, count)
        start = self.clause_bounds[clause]
        size = self.clause_bounds[clause + 1] - start
        _, slot = ranges(start, size)
        held = possible[self.clause_atoms[slot]]
        clause_ok = np.logical_or.reduceat(held, np.cumsum(size) - size)
        return np.logical_and.reduceat(clause_ok, np.cumsum(count) - count)

    def build_all(self) -> None:
        """Build every automaton now (before saving, or to time evaluation fairly)."""
        self.literals.build_all()

"""Evaluate a rule set on one batch: possible atoms, candidate rules, anchors, programs.

1. *Literal hits*: one Aho-Corasick pass per field over its distinct values
   (`literals.py`) gives every (literal atom, value slot) that holds, as sorted keys;
   with the slots' row counts, each literal atom's *cost* (rows it holds on).
2. *Candidates* (`plan.py`): rules all of whose necessary clauses have a possible atom.
3. *Anchors* (`anchors.py`): each candidate is evaluated only on the rows of its cheapest
   necessary clause, filtered by its next clauses of literals.
4. *Programs* (`program.py`): all candidates' trees at once, level by level in numpy. Leaf
   values come from `atom_values` for every (atom, row) pair in one call: literal atoms by
   binary search in the hit keys, null/exists/empty from the slots, and the rest (globs,
   regexes, comparisons, field references) by one kernel per atom on only the distinct
   values its pairs need (`values.py`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from casescope.detect.anchors import anchor_pairs, groups
from casescope.detect.atoms import KEYWORDS, Atom
from casescope.detect.columns import BatchFields
from casescope.detect.compile import Node
from casescope.detect.keywords import KeywordSearch
from casescope.detect.literals import EMPTY
from casescope.detect.plan import Code, RulePlan
from casescope.detect.program import evaluate_tree, ranges
from casescope.detect.search import distinct, distinct_first, isin_sorted, key_ranges
from casescope.detect.values import SMALL_VALUES, Values, fieldref_mask, value_mask

TREE_WORK = 300_000  # rules with more node x row values short-circuit row by row
# Code values as plain ints (IntEnum attribute access is slow in hot loops)
_LITERAL, _EXISTS, _MISSING, _NULL, _EMPTY, _VALUES, _FIELDREF, _KEYWORD = (int(c) for c in Code)
TEXT_SLOTS = 20_000  # batches with more slots take values from Arrow, not from Python lists
REFINE_ROWS = 64  # candidates anchoring on more rows get their regexes computed exactly


class BatchEvaluator:
    """Per-batch state: possible atoms and their costs, literal hits, keyword masks."""

    def __init__(
        self, plan: RulePlan, atoms: list[Atom], trees: list[Node], batch: pa.RecordBatch
    ) -> None:
        self.plan = plan
        self.trees = trees
        self.atoms = atoms
        self.fields = BatchFields(batch, plan.field_id)
        self.num_rows = batch.num_rows
        self.possible = np.ones(plan.num_atoms + 1, dtype=bool)
        self.cost = np.full(plan.num_atoms + 1, self.num_rows, dtype=np.int64)
        self.width = self.fields.num_slots + 1
        self.keys = EMPTY
        self.keywords: KeywordSearch | None = None
        self.clause_cost = EMPTY
        self.exact = np.zeros(plan.num_atoms + 1, dtype=bool)

    def match_literals(self) -> None:
        """Literal hits of every present field; `possible` and `cost` of every atom.

        Atoms start as if their field were absent (only null/missing/keyword atoms
        possible); each present field's atoms then get their present default (literals
        impossible until a hit says otherwise), one slice per field."""
        plan, fields = self.plan, self.fields
        possible = plan.absent_possible.copy()
        exact = np.zeros(plan.num_atoms + 1, dtype=bool)
        starts = plan.field_atom_starts
        lo = starts[fields.present]
        some = plan.field_atoms[ranges(lo, starts[fields.present + 1] - lo)[1]]
        possible[some] = plan.present_possible[some]
        exact[some] = ~plan.present_possible[some]  # the literal atoms
        refs = plan.fieldref_ids
        possible[refs[fields.field_local[plan.atom_ref[refs]] < 0]] = False
        scanned = fields.present[plan.literals.field_atoms[fields.present]]
        ends, numbers = plan.literals.scan(fields.text.text, fields.spans(scanned))
        self.keys = plan.literals.match(ends, numbers, fields.text.offsets)
        atom_ids, slots = self.keys // self.width, self.keys % self.width
        found, first = distinct_first(atom_ids)
        possible[found] = True
        cost = self.cost
        cost[exact] = 0
        if len(found):
            cost[found] = np.add.reduceat(np.diff(fields.slot_starts)[slots], first)
        globs = plan.glob_ids
        possible[globs] = possible[plan.atom_hint[globs]]
        cost[globs] = cost[plan.atom_hint[globs]]
        cost[~possible] = 0
        self.possible, self.exact = possible, exact

    def candidates(self) -> np.ndarray:
        """Indexes of the rules that can match this batch."""
        plan = self.plan
        self.match_literals()
        maybe = plan.candidates(self.possible)
        self.clause_cost = self._clause_costs(np.flatnonzero(maybe))
        # only the rules whose atoms a step changed are checked again
        keyword_rules = np.flatnonzero(maybe & plan.rule_keywords)
        if self.match_keywords(keyword_rules):
            maybe[keyword_rules] = plan.candidates_of(self.possible, keyword_rules)
        refined = self.refine(np.flatnonzero(maybe))
        if len(refined):
            maybe[refined] = plan.candidates_of(self.possible, refined)
            self.clause_cost = self._clause_costs(np.flatnonzero(maybe))
        return np.flatnonzero(maybe)

    def _clause_costs(self, rules: np.ndarray) -> np.ndarray:
        """Cost of every clause of `rules` (indexed by clause id; other clauses: 0)."""
        plan = self.plan
        out = np.zeros(len(plan.clause_starts), dtype=np.int64)
        lo = plan.rule_bounds[rules]
        _, clause = ranges(lo, plan.rule_bounds[rules + 1] - lo)
        if len(clause):
            start = plan.clause_bounds[clause]
            size = plan.clause_bounds[clause + 1] - start
            _, slot = ranges(start, size)
            costs = self.cost[plan.clause_atoms[slot]]
            out[clause] = np.add.reduceat(costs, np.cumsum(size) - size)
        return out

    def match_keywords(self, rules: np.ndarray) -> bool:
        """Scan the map values of the keyword rules' anchor rows (e.g. their channel's rows)
        for keywords; literal keywords found nowhere there become impossible."""
        if not len(rules):
            return False
        field = self.plan.field_id[KEYWORDS]
        self.keywords = KeywordSearch(self.fields, self.plan.literals, field)
        _, rows = anchor_pairs(self, rules, further=False)
        self.keywords.context(rows)
        atoms = self.plan.keyword_atoms
        self.possible[atoms[self.plan.atom_literal[atoms]]] = False
        self.possible[distinct(self.keywords.keys // self.keywords.width)] = True
        globs = self.plan.glob_ids
        self.possible[globs] = self.possible[self.plan.atom_hint[globs]]
        return True

    def refine(self, rules: np.ndarray) -> np.ndarray:
        """Compute exactly, on all of their field's values, the globs, regexes and
        comparisons in the clauses of candidates that would otherwise anchor on many rows
        (e.g. a rule whose only selective part is a regex on CommandLine). Returns the rules
        whose clauses read an atom so computed (empty if none)."""
        plan = self.plan
        lo = plan.rule_bounds[rules]
        count = plan.rule_bounds[rules + 1] - lo
        owner, clause = ranges(lo, count)
        best = np.minimum.reduceat(self.clause_cost[clause], np.cumsum(count) - count)
        costly = np.isin(owner, np.flatnonzero(best > max(REFINE_ROWS, self.num_rows // 100)))
        start = plan.clause_bounds[clause[costly]]
        _, slot = ranges(start, plan.clause_bounds[clause[costly] + 1] - start)
        atoms = distinct(plan.clause_atoms[slot])
        atoms = atoms[(plan.atom_code[atoms] == Code.VALUES) & ~self.exact[atoms]]
        atoms = atoms[self.fields.field_local[plan.atom_field[atoms]] >= 0]
        if not len(atoms):
            return EMPTY
        found = [a * self.width + self._value_slots(int(a)) for a in atoms]
        self.keys = distinct(np.concatenate([self.keys, *found]))
        counts = np.diff(self.fields.slot_starts)
        for atom, keys in zip(atoms, found, strict=True):
            self.possible[atom] = len(keys) > 0
            self.cost[atom] = counts[keys % self.width].sum()
        self.exact[atoms] = True
        return self._reading(rules, atoms)

    def _reading(self, rules: np.ndarray, atoms: np.ndarray) -> np.ndarray:
        """Those of `rules` with a necessary clause that holds one of `atoms` (sorted)."""
        plan = self.plan
        lo = plan.rule_bounds[rules]
        owner, clause = ranges(lo, plan.rule_bounds[rules + 1] - lo)
        start = plan.clause_bounds[clause]
        each, slot = ranges(start, plan.clause_bounds[clause + 1] - start)
        reads = isin_sorted(plan.clause_atoms[slot], atoms)
        return rules[distinct(owner[each[reads]])]

    def _value_slots(self, atom_id: int) -> np.ndarray:
        """The slots of its field on which a GLOB/REGEX/CMP atom holds."""
        atom, fields = self.atoms[atom_id], self.fields
        if atom.hint >= 0:
            slots = self.slots_of(atom.hint)
        else:
            local = fields.field_local[self.plan.atom_field[atom_id]]
            slots = np.arange(fields.field_starts[local], fields.field_starts[local + 1])
        if not len(slots):
            return slots
        return slots[value_mask(atom, self._strings(slots, lower=not atom.cased))]

    def matches(self) -> tuple[np.ndarray, np.ndarray]:
        """(rule index, row) of every hit."""
        rules = self.candidates()
        if not len(rules):
            return EMPTY, EMPTY
        owner, rows = anchor_pairs(self, rules)
        programs = self.plan.programs
        counts = np.bincount(owner, minlength=len(rules))
        big = np.flatnonzero(programs.rule_size[rules] * counts > TREE_WORK)
        small = ~np.isin(owner, big)
        hit_owner, hit_rows = programs.run(rules, owner[small], rows[small], self.atom_values)
        found_owner, found_rows = [hit_owner], [hit_rows]
        starts = np.concatenate(([0], np.cumsum(counts)))
        for index in big:
            some = rows[starts[index] : starts[index + 1]]
            mask = evaluate_tree(self.trees[rules[index]], some, self.atom_values)
            found_owner.append(np.full(int(mask.sum()), index))
            found_rows.append(some[mask])
        return rules[np.concatenate(found_owner)], np.concatenate(found_rows)

    def anchor_of(self, atoms: np.ndarray) -> np.ndarray:
        """The atoms whose hit rows stand for these atoms' rows: themselves when exact,
        else (globs) their hint, a superset."""
        return np.where(self.exact[atoms], atoms, self.plan.anchor_atom[atoms])

    def slots_of(self, atom_id: int) -> np.ndarray:
        """Slots on which a literal atom holds."""
        lo, hi = key_ranges(self.keys, np.array([atom_id]), self.width)
        return self.keys[lo[0] : hi[0]] - atom_id * self.width

    def atom_values(self, atoms: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Truth of each (atom, row) pair."""
        plan = self.plan
        code = plan.atom_code[atoms]
        slot = self.fields.slot_of(plan.atom_field[atoms], rows)
        present = slot >= 0
        empty = present & self.fields.slot_empty[slot]
        out = np.zeros(len(atoms), dtype=bool)
        at = self.exact[atoms] & present
        out[at] = isin_sorted(atoms[at] * self.width + slot[at], self.keys)
        for kind, value in ((_EXISTS, present), (_MISSING, ~present), (_NULL, ~present | empty)):
            at = code == kind
            out[at] = value[at]
        out[code == _EMPTY] = empty[code == _EMPTY]
        code = np.where(self.exact[atoms], _LITERAL, code)
        for kind, method in ((_VALUES, self._values), (_FIELDREF, self._fieldref)):
            at = np.flatnonzero(code == kind)
            for where in groups(atoms[at]):
                pick = at[where]
                out[pick] = method(int(atoms[pick[0]]), slot[pick], rows[pick])
        at = np.flatnonzero(code == _KEYWORD)
        if len(at):
            out[at] = self._keywords(atoms[at], rows[at])
        return out

    def _values(self, atom_id: int, slots: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """GLOB, REGEX, CMP: one kernel on the distinct values the pairs need."""
        atom = self.atoms[atom_id]
        needed = distinct(slots[slots >= 0])
        if atom.hint >= 0:
            needed = needed[isin_sorted(needed, self.slots_of(atom.hint))]
        if not len(needed):
            return np.zeros(len(slots), dtype=bool)
        lower = not atom.cased
        holds = needed[value_mask(atom, self._strings(needed, lower))]
        return isin_sorted(slots, holds)

    def _strings(self, slots: np.ndarray, lower: bool) -> Values:
        """The values of some slots: a list when few (see `values.SMALL_VALUES`)."""
        if len(slots) <= SMALL_VALUES and self.fields.num_slots <= TEXT_SLOTS:
            return self.fields.texts(slots, lower)
        return self.fields.strings(slots, lower)

    def _fieldref(self, atom_id: int, slots: np.ndarray, rows: np.ndarray) -> np.ndarray:
        other = self.fields.slot_of(np.full(len(rows), self.plan.atom_ref[atom_id]), rows)
        both = (slots >= 0) & (other >= 0)
        out = np.zeros(len(slots), dtype=bool)
        if both.any():
            left = self._strings(slots[both], lower=True)
            right = self._strings(other[both], lower=True)
            out[both] = fieldref_mask(self.atoms[atom_id].op, left, right)
        return out

    def _keywords(self, atoms: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Truth of (keyword atom, row) pairs."""
        if self.keywords is None:
            field = self.plan.field_id[KEYWORDS]
            self.keywords = KeywordSearch(self.fields, self.plan.literals, field)
        context = self.keywords.context(rows)
        out = np.zeros(len(atoms), dtype=bool)
        for where in groups(atoms):
            atom_id = int(atoms[where[0]])
            literal = bool(self.plan.atom_literal[atom_id])
            atom = self.atoms[atom_id]
            out[where] = self.keywords.holds(atom_id, atom, literal, rows[where], context)
        return out

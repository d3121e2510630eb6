"""Evaluate compiled rule trees on one batch: atoms with pyarrow compute, logic with numpy.

Atoms are computed on first use and shared by every rule in the batch; an AND stops as soon
as no row can still match, so most atoms of most rules are never computed on a given batch.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from casescope.detect.compile import Atom, AtomTable, Node
from casescope.detect.frame import BatchColumns


def _bools(array: pa.Array) -> np.ndarray:
    if array.null_count:
        array = pc.fill_null(array, False)
    return array.to_numpy(zero_copy_only=False)


LITERAL_KINDS = ("eq", "prefix", "suffix", "contains")
ALL: set[str] = set()  # marker: no prefilter for this field


def _compare(column: pa.Array, atom: Atom) -> np.ndarray:
    out = np.zeros(len(column), dtype=bool)
    for i, text in enumerate(column.to_pylist()):
        try:
            value = float(text)
        except (TypeError, ValueError):
            continue
        out[i] = getattr(value, f"__{atom.op}__")(atom.number)
    return out


def atom_mask(atom: Atom, columns: BatchColumns) -> np.ndarray:
    if atom.kind in ("any", "exists"):
        return _bools(pc.is_valid(columns.original(atom.field)))
    if atom.kind == "missing":
        return _bools(pc.is_null(columns.original(atom.field)))
    if atom.kind == "null":
        column = columns.original(atom.field)
        return _bools(pc.or_kleene(pc.is_null(column), pc.equal(column, "")))
    if atom.kind == "cmp":
        return _compare(columns.original(atom.field), atom)
    if atom.kind == "fieldref":
        left = pc.utf8_lower(columns.original(atom.field))  # nulls kept: missing never equal
        return _bools(pc.equal(left, pc.utf8_lower(columns.original(atom.arg))))
    column = columns.original(atom.field) if atom.cased else columns.lower(atom.field)
    if atom.kind == "eq":
        return _bools(pc.equal(column, atom.arg))
    if atom.kind == "prefix":
        return _bools(pc.starts_with(column, atom.arg))
    if atom.kind == "suffix":
        return _bools(pc.ends_with(column, atom.arg))
    if atom.kind == "contains":
        return _bools(pc.match_substring(column, atom.arg))
    return _bools(pc.match_substring_regex(column, atom.arg))


class Evaluator:
    def __init__(self, table: AtomTable, columns: BatchColumns) -> None:
        self.table = table
        self.columns = columns
        self._cache: dict[int, np.ndarray] = {}
        self._present: dict[str, set[str]] = {}
        self._none = np.zeros(columns.rows, dtype=bool)

    def _absent(self, atom: Atom) -> bool:
        """True when a literal atom's text occurs nowhere in its field in this batch."""
        if atom.cased or atom.kind not in LITERAL_KINDS or not atom.arg:
            return False
        present = self._present.get(atom.field)
        if present is None:
            automaton = self.table.automaton(atom.field)
            present = ALL if automaton is None else self.columns.present(atom.field, automaton)
            self._present[atom.field] = present
        return present is not ALL and atom.arg not in present

    def surely_false(self, clause: frozenset[int]) -> bool:
        """Every atom of the clause is a literal absent from this batch (nothing evaluated)."""
        atoms = self.table.atoms
        return all(self._absent(atoms[atom_id]) for atom_id in clause)

    def atom(self, atom_id: int) -> np.ndarray:
        mask = self._cache.get(atom_id)
        if mask is None:
            atom = self.table.atoms[atom_id]
            mask = self._none if self._absent(atom) else atom_mask(atom, self.columns)
            self._cache[atom_id] = mask
        return mask

    def tree(self, node: Node) -> np.ndarray:
        kind = node[0]
        if kind == "atom":
            return self.atom(node[1])
        if kind == "not":
            return ~self.tree(node[1])
        children = node[1]
        result = self.tree(children[0])
        for child in children[1:]:
            if kind == "and":
                if not result.any():
                    return result
                result = result & self.tree(child)
            else:
                result = result | self.tree(child)
        return result

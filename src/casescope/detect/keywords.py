"""Keyword (field-less) atoms: searched in the map values of only the rows that need them.

A keyword matches when it occurs in any value of the event's `fields` map. Keyword rules
almost always also require a channel or event id, so scanning every value of a batch would
be wasted: the search runs lazily, on the distinct values of the rows the evaluator asks
about, and remembers which values it has already scanned.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from casescope.detect.atoms import Atom
from casescope.detect.columns import BatchFields, field_text
from casescope.detect.literals import EMPTY, LiteralTable
from casescope.detect.program import ranges
from casescope.detect.search import distinct, isin_sorted, key_ranges
from casescope.detect.values import value_mask


class KeywordSearch:
    """Which map values of a batch each keyword atom holds on, computed on demand."""

    def __init__(self, fields: BatchFields, literals: LiteralTable, field: int) -> None:
        self.fields = fields
        self.literals = literals
        self.field = field
        self.width = len(fields.values) + 1
        self.scanned = np.zeros(len(fields.values), dtype=bool)
        self.keys = EMPTY  # atom * width + value, sorted
        self.computed: dict[int, np.ndarray] = {}  # non-literal atom -> values where it holds
        self.tested: dict[int, np.ndarray] = {}  # non-literal atom -> values tested

    def _entries(self, rows: np.ndarray) -> np.ndarray:
        """Positions of the map entries of the given (sorted, distinct) rows."""
        entry_rows = self.fields.keyword_rows
        lo = np.searchsorted(entry_rows, rows, side="left")
        hi = np.searchsorted(entry_rows, rows, side="right")
        return ranges(lo, hi - lo)[1]

    def _scan(self, values: np.ndarray) -> None:
        """Run the keyword automaton over the values not scanned yet."""
        values = values[~self.scanned[values]]
        if not len(values):
            return
        self.scanned[values] = True
        text = field_text(pc.utf8_lower(self.fields.values.take(pa.array(values))))
        ends, numbers = self.literals.scan(text.text, [(self.field, 0, len(text.text))])
        keys = self.literals.match(ends, numbers, text.offsets)
        atoms, local = keys // len(text.offsets), keys % len(text.offsets)
        self.keys = distinct(np.concatenate([self.keys, atoms * self.width + values[local]]))

    def context(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The map entries of some rows, their values, and those values' distinct ones
        (scanned for literal keywords on the way)."""
        entries = self._entries(distinct(rows))
        values = self.fields.keyword_values[entries]
        unique = distinct(values)
        self._scan(unique)
        return entries, values, unique

    def holds(
        self, atom_id: int, atom: Atom, literal: bool, rows: np.ndarray, context: tuple
    ) -> np.ndarray:
        """Per row of `rows` (within the context's rows): does some map value of the row
        satisfy the keyword atom."""
        entries, values, unique = context
        if literal:
            lo, hi = key_ranges(self.keys, np.array([atom_id]), self.width)
            found = self.keys[lo[0] : hi[0]] - atom_id * self.width
        else:
            found = self._compute(atom_id, atom, unique)
        held = self.fields.keyword_rows[entries[isin_sorted(values, found)]]
        return isin_sorted(rows, distinct(held))

    def _compute(self, atom_id: int, atom: Atom, values: np.ndarray) -> np.ndarray:
        """Values (sorted) among those tested where a GLOB/REGEX keyword atom holds."""
        tested = self.tested.get(atom_id, EMPTY)
        new = values[~isin_sorted(values, tested)]
        found = self.computed.get(atom_id, EMPTY)
        if len(new):
            strings = self.fields.values.take(pa.array(new))
            mask = value_mask(atom, strings if atom.cased else pc.utf8_lower(strings))
            found = distinct(np.concatenate([found, new[mask]]))
            self.tested[atom_id] = distinct(np.concatenate([tested, new]))
            self.computed[atom_id] = found
        return found

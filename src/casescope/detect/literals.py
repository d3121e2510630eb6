"""All literal atoms of a rule set answered by one Aho-Corasick pass per field.

Literal atoms (`EQ`, `PREFIX`, `SUFFIX`, `CONTAINS`, case-insensitive) are grouped into
*patterns*: distinct (field, lowercased text) pairs, numbered across the rule set, each
with the atoms that test it and how. A field's automaton (`pyahocorasick`) holds its
patterns. A batch's distinct values of a field are one contiguous slice of one string (see
`columns.py`); the automaton scans it in C, and every match (end position, pattern) is
placed in its value by binary search on the values' character offsets — a match that
straddles two values is dropped. Whether a match starts at the value's start and/or ends
at its end decides which of the pattern's atoms hold: `CONTAINS` always, `PREFIX` at the
start, `SUFFIX` at the end, `EQ` at both. Python never loops over values or matches.
"""

from __future__ import annotations

import itertools

import ahocorasick
import numpy as np

from casescope.detect.atoms import LITERAL_KINDS, Atom, Kind
from casescope.detect.search import distinct

_MODES = {Kind.CONTAINS: 0, Kind.PREFIX: 1, Kind.SUFFIX: 2, Kind.EQ: 3}
EMPTY = np.zeros(0, dtype=np.int64)


class LiteralTable:
    """Patterns of every literal atom, their atoms, and one automaton per field."""

    def __init__(self, atoms: list[Atom], field_id: dict[str, int]) -> None:
        patterns: dict[tuple[int, str], int] = {}
        pairs = []
        for atom_id, atom in enumerate(atoms):
            if atom.kind in LITERAL_KINDS:
                key = (field_id[atom.field], atom.text)
                number = patterns.setdefault(key, len(patterns))
                pairs.append((number, atom_id, _MODES[atom.kind]))
        pairs.sort()
        self.texts = [text for _, text in patterns]
        self.pattern_field = np.array([f for f, _ in patterns], dtype=np.int64)
        self.pattern_length = np.array([len(t) for t in self.texts], dtype=np.int64)
        self.pattern_atoms = np.array([p[1] for p in pairs], dtype=np.int64)
        self.pattern_modes = np.array([p[2] for p in pairs], dtype=np.int8)
        counts = np.bincount([p[0] for p in pairs], minlength=len(patterns))
        self.pattern_starts = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        self.field_atoms = np.zeros(len(field_id) + 1, dtype=bool)  # field has literals
        self.field_atoms[self.pattern_field] = True
        self.automata: dict[int, ahocorasick.Automaton] = {}

    def automaton(self, field: int) -> ahocorasick.Automaton:
        """The field's automaton (built on first use, kept when the rule set is saved)."""
        found = self.automata.get(field)
        if found is None:
            found = ahocorasick.Automaton(ahocorasick.STORE_INTS)
            for number in np.flatnonzero(self.pattern_field == field):
                found.add_word(self.texts[number], int(number))
            found.make_automaton()
            self.automata[field] = found
        return found

    def build_all(self) -> None:
        for field in np.unique(self.pattern_field):
            self.automaton(int(field))

    def scan(self, text: str, spans: list[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
        """(end positions, pattern numbers) of every match in text[start:end] of each
        (field, start, end) span, positions relative to `text`."""
        ends, numbers = [], []
        for field, start, end in spans:
            if not self.field_atoms[field]:  # no literal atom on this field
                continue
            hits = list(self.automaton(field).iter(text[start:end]))
            if hits:
                flat = np.fromiter(itertools.chain.from_iterable(hits), np.int64, 2 * len(hits))
                ends.append(flat[0::2] + (start + 1))
                numbers.append(flat[1::2])
        if not ends:
            return EMPTY, EMPTY
        return np.concatenate(ends), np.concatenate(numbers)

    def match(self, ends: np.ndarray, numbers: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Sorted keys `atom * width + value` of every (atom, value) where a literal atom
        holds, `width = len(offsets)`; `ends` are exclusive match ends in the text whose
        values start at `offsets`."""
        if not len(ends):
            return EMPTY
        width = len(offsets)
        value = np.searchsorted(offsets, ends, side="left") - 1  # end is exclusive
        starts = ends - self.pattern_length[numbers]
        ok = starts >= offsets[value]  # not straddling two values
        value, numbers = value[ok], numbers[ok]
        at_start = starts[ok] == offsets[value]
        at_end = ends[ok] == offsets[value + 1]
        first = self.pattern_starts[numbers]
        counts = self.pattern_starts[numbers + 1] - first
        match = np.repeat(np.arange(len(numbers)), counts)
        slot = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        slot += np.repeat(first, counts)
        modes = self.pattern_modes[slot]
        start, end = at_start[match], at_end[match]
        good = (modes == 0) | ((modes == 1) & start) | ((modes == 2) & end)
        good |= (modes == 3) & start & end
        return distinct(self.pattern_atoms[slot[good]] * width + value[match[good]])

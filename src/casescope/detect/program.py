"""Rule trees as flat node arrays, evaluated for many rules at once with numpy.

Every rule's tree becomes a list of nodes in post-order (children before parents; equal
subtrees of a rule are shared), concatenated over the rule set: `kind`, `atom`, `level`
(0 for leaves, 1 + the deepest child otherwise) and children (local ids, CSR).

A batch evaluates a set of candidate rules, each on its own rows: rule r gets a block of
`nodes(r) × rows(r)` booleans in one flat array (node-major). Leaves are filled by the
caller's atom function for all (atom, row) pairs at once; then, level by level, all AND,
OR and NOT nodes of every rule are one gather plus one `reduceat` (as ORs with negations).
Python does a constant number of numpy calls per level, whatever the number of rules or
rows: what matters on small batches (one 30-event file), where these calls are the cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from casescope.detect.compile import Node, Tag

LEAF, AND, OR, NOT, TRUE, FALSE = range(6)
_KINDS = {Tag.AND: AND, Tag.OR: OR, Tag.NOT: NOT, Tag.TRUE: TRUE, Tag.FALSE: FALSE}

_JUNCTIONS = (Tag.AND, Tag.OR)

#: (atom ids, rows) of every leaf instance -> their truth values.
AtomFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]


def ranges(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For segments (start, count): the owning segment and start + offset of each element."""
    owner = np.repeat(np.arange(len(counts)), counts)
    shift = starts - np.cumsum(counts) + counts  # start minus the segment's first position
    return owner, shift[owner] + np.arange(len(owner))


class Programs:
    """All trees of a rule set as flat arrays."""

    def __init__(self, trees: list[Node]) -> None:
        kinds: list[int] = []
        atoms: list[int] = []
        levels: list[int] = []
        children: list[int] = []
        child_starts: list[int] = []
        starts: list[int] = []
        for tree in trees:
            starts.append(len(kinds))
            memo: dict[Node, int] = {}
            self._visit(tree, memo, len(kinds), (kinds, atoms, levels, children, child_starts))
        child_starts.append(len(children))
        self.kind = np.array(kinds, dtype=np.int8)
        self.atom = np.array(atoms, dtype=np.int64)
        self.level = np.array(levels, dtype=np.int64)
        self.children = np.array(children, dtype=np.int64)
        self.child_starts = np.array(child_starts, dtype=np.int64)
        self.rule_start = np.array(starts, dtype=np.int64)
        self.rule_size = np.diff(np.append(self.rule_start, len(kinds)))

    @staticmethod
    def _visit(node: Node, memo: dict[Node, int], base: int, out: tuple[list, ...]) -> int:
        kinds, atoms, levels, children, child_starts = out
        if node in memo:
            return memo[node]
        if node[0] is Tag.ATOM:
            ids: list[int] = []
            kind, atom, level = LEAF, node[1], 0
        else:
            kind, atom = _KINDS[node[0]], -1
            items = (node[1],) if node[0] is Tag.NOT else node[1] if node[0] in _JUNCTIONS else ()
            ids = [Programs._visit(child, memo, base, out) for child in items]
            level = 1 + max((levels[base + i] for i in ids), default=-1)
        memo[node] = len(kinds) - base
        kinds.append(kind)
        atoms.append(atom)
        levels.append(level)
        child_starts.append(len(children))
        children.extend(ids)
        return memo[node]

    def run(
        self, rules: np.ndarray, owner: np.ndarray, rows: np.ndarray, atom_fn: AtomFunction
    ) -> tuple[np.ndarray, np.ndarray]:
        """Evaluate `rules[owner[i]]` on `rows[i]` (pairs sorted by owner); return the
        (owner, row) pairs on which the rule's root is true."""
        counts = np.bincount(owner, minlength=len(rules)).astype(np.int64)
        sizes = self.rule_size[rules]
        layout = _Layout(
            block=np.concatenate(([0], np.cumsum(sizes * counts))),
            counts=counts,
            row_base=np.concatenate(([0], np.cumsum(counts)))[:-1],
            rows=rows,
        )
        node_owner, nodes = ranges(self.rule_start[rules], sizes)  # every node of every rule
        local = nodes - self.rule_start[rules][node_owner]
        values = np.zeros(layout.block[-1], dtype=bool)
        self._leaves(_Nodes(nodes, node_owner, local), layout, values, atom_fn)
        for level in range(1, int(self.level[nodes].max(initial=0)) + 1):
            at = self.level[nodes] == level
            self._inner(_Nodes(nodes[at], node_owner[at], local[at]), layout, values)
        _, roots = ranges(layout.block[:-1] + (sizes - 1) * counts, counts)
        hit = values[roots]
        return owner[hit], rows[hit]

    def _leaves(
        self, nodes: _Nodes, layout: _Layout, values: np.ndarray, atom_fn: AtomFunction
    ) -> None:
        """Constants and atoms: every (leaf, row) of every rule in one `atom_fn` call."""
        kind = self.kind[nodes.ids]
        for constant in (TRUE, FALSE):
            at = nodes.where(kind == constant)
            _, where = ranges(layout.start_of(at), layout.counts[at.owner])
            values[where] = constant == TRUE
        at = nodes.where(kind == LEAF)
        each, where = ranges(layout.start_of(at), layout.counts[at.owner])
        _, row_slot = ranges(layout.row_base[at.owner], layout.counts[at.owner])
        if len(where):
            values[where] = atom_fn(self.atom[at.ids][each], layout.rows[row_slot])

    def _inner(self, nodes: _Nodes, layout: _Layout, values: np.ndarray) -> None:
        """One level of AND/OR/NOT nodes of every rule: one gather and one `reduceat` for
        all of them, as ORs with negations: AND = ~OR(~children), NOT = ~OR(child)."""
        if not len(nodes.ids):
            return
        kind = self.kind[nodes.ids]
        m = layout.counts[nodes.owner]
        k = self.child_starts[nodes.ids + 1] - self.child_starts[nodes.ids]
        # one element per (node, row, child): node-major, then row, then child
        each, t = ranges(np.zeros(len(nodes.ids), dtype=np.int64), k * m)
        row, child = t // k[each], t % k[each]
        child_local = self.children[self.child_starts[nodes.ids][each] + child]
        gathered = values[layout.block[nodes.owner][each] + child_local * m[each] + row]
        gathered ^= (kind == AND)[each]
        _, out = ranges(layout.start_of(nodes), m)
        if len(out):
            segments = np.concatenate(([0], np.cumsum(np.repeat(k, m))))[:-1]
            negate = np.repeat(kind != OR, m)
            values[out] = np.logical_or.reduceat(gathered, segments) ^ negate


@dataclass
class _Nodes:
    """Some nodes of the candidate rules: global ids, owning rule, id within the rule."""

    ids: np.ndarray
    owner: np.ndarray
    local: np.ndarray

    def where(self, mask: np.ndarray) -> _Nodes:
        return _Nodes(self.ids[mask], self.owner[mask], self.local[mask])


@dataclass
class _Layout:
    """Where each rule's block of node x row values starts, and the rows it covers."""

    block: np.ndarray  # start of each rule's block (plus the total at the end)
    counts: np.ndarray  # rows per rule
    row_base: np.ndarray  # start of each rule's rows in `rows`
    rows: np.ndarray

    def start_of(self, nodes: _Nodes) -> np.ndarray:
        """Start of each node's row values (node-major blocks)."""
        return self.block[nodes.owner] + nodes.local * self.counts[nodes.owner]


def evaluate_tree(node: Node, rows: np.ndarray, atom_fn: AtomFunction) -> np.ndarray:
    """Mask over `rows` of one tree, short-circuiting per row: each child of an AND is
    evaluated only on the rows still true, each child of an OR only on those not yet true.
    For rules with large trees on many rows, where this saves most of the work."""
    tag = node[0]
    if tag is Tag.ATOM:
        return atom_fn(np.full(len(rows), node[1], dtype=np.int64), rows)
    if tag in (Tag.TRUE, Tag.FALSE):
        return np.full(len(rows), tag is Tag.TRUE)
    if tag is Tag.NOT:
        return ~evaluate_tree(node[1], rows, atom_fn)
    conjunction = tag is Tag.AND
    pending = np.arange(len(rows))  # rows whose value is still open
    for child in node[1]:
        if not len(pending):
            break
        holds = evaluate_tree(child, rows[pending], atom_fn)
        pending = pending[holds if conjunction else ~holds]
    out = np.full(len(rows), not conjunction)
    out[pending] = conjunction
    return out

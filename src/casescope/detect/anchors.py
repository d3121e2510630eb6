"""Anchor rows: each candidate rule is evaluated only where its cheap clauses can hold.

A necessary clause's *cost* is the number of rows its literal atoms hold on (from the
Aho-Corasick hits; atoms of unknown cost count as every row). For every candidate rule at
once: take its cheapest clause, expand the clause's atoms to their value slots and the
slots to their rows, and deduplicate the (rule, row) pairs; then drop the pairs on which
the rule's next clauses (made of literal atoms only) have no atom that holds. A rule
whose cheapest clause still covers more than `DENSE_SHARE` of the batch is evaluated on
every row (and filtered the same way).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from casescope.detect.program import ranges
from casescope.detect.search import distinct, isin_sorted

if TYPE_CHECKING:
    from casescope.detect.evaluate import BatchEvaluator

DENSE_SHARE = 0.5
FILTER_CLAUSES = 2  # further clauses checked on the anchor rows
FILTER_WIDTH = 64  # only clauses of at most this many atoms


def groups(keys: np.ndarray) -> list[np.ndarray]:
    """Positions of each distinct key (stable)."""
    if not len(keys):
        return []
    order = np.argsort(keys, kind="stable")
    cuts = np.flatnonzero(np.diff(keys[order])) + 1
    return np.split(order, cuts)


def _ranked_clauses(ev: BatchEvaluator, rules: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every clause of the rules as (owner, clause, rank by cost within its rule)."""
    plan = ev.plan
    lo = plan.rule_bounds[rules]
    owner, clause = ranges(lo, plan.rule_bounds[rules + 1] - lo)
    order = np.lexsort((ev.clause_cost[clause], owner))
    owner, clause = owner[order], clause[order]
    first = np.searchsorted(owner, owner)  # index of the owner's first clause
    return owner, clause, np.arange(len(owner)) - first


def _clause_pairs(ev: BatchEvaluator, owners: np.ndarray, clauses: np.ndarray) -> tuple:
    """(owner, row) pairs where an atom of the owner's clause holds (literal atoms)."""
    plan, fields = ev.plan, ev.fields
    start = plan.clause_bounds[clauses]
    each, slot = ranges(start, plan.clause_bounds[clauses + 1] - start)
    atoms = ev.anchor_of(plan.clause_atoms[slot])
    keep = ev.cost[atoms] > 0
    atoms, owner = atoms[keep], owners[each[keep]]
    lo = np.searchsorted(ev.keys, atoms * ev.width)
    hi = np.searchsorted(ev.keys, (atoms + 1) * ev.width)
    pick, key = ranges(lo, hi - lo)
    rows, which = fields.rows_of(ev.keys[key] - atoms[pick] * ev.width)
    return owner[pick][which], rows


def anchor_pairs(
    ev: BatchEvaluator, rules: np.ndarray, further: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(index into `rules`, row) pairs to evaluate, sorted by rule then row; `further`:
    filtered by the rules' next clauses."""
    n = ev.num_rows
    owner, clause, rank = _ranked_clauses(ev, rules)
    best = rank == 0
    dense = ev.clause_cost[clause[best]] > DENSE_SHARE * n
    sparse_owner, sparse_clause = owner[best][~dense], clause[best][~dense]
    pairs = [_clause_pairs(ev, sparse_owner, sparse_clause)]
    full = owner[best][dense]
    pairs.append((np.repeat(full, n), np.tile(np.arange(n), len(full))))
    owners, rows = (np.concatenate([p[i] for p in pairs]) for i in (0, 1))
    keys = distinct(owners * n + rows)
    owner_of, rows = keys // n, keys % n
    for level in range(1, FILTER_CLAUSES + 1 if further else 1):
        at = rank == level
        at[at] = _literal_clauses(ev, clause[at])
        if not at.any() or not len(rows):
            break
        filter_clause = np.full(len(rules), -1, dtype=np.int64)
        filter_clause[owner[at]] = clause[at]
        keep = _holds_somewhere(ev, filter_clause[owner_of], rows)
        owner_of, rows = owner_of[keep], rows[keep]
    return owner_of, rows


def _holds_somewhere(ev: BatchEvaluator, clauses: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per (clause, row) pair: does some atom of the clause hold on the row (-1: no clause,
    kept). Atoms are literal (or globs, by their hint: a superset, so nothing is lost)."""
    plan = ev.plan
    keep = clauses < 0
    check = np.flatnonzero(~keep)
    start = plan.clause_bounds[clauses[check]]
    size = plan.clause_bounds[clauses[check] + 1] - start
    each, slot = ranges(start, size)
    atoms = ev.anchor_of(plan.clause_atoms[slot])
    slots = ev.fields.slot_of(plan.atom_field[atoms], rows[check][each])
    held = (slots >= 0) & isin_sorted(atoms * ev.width + slots, ev.keys)
    if len(check):
        keep[check] = np.logical_or.reduceat(held, np.cumsum(size) - size)
    return keep


def _literal_clauses(ev: BatchEvaluator, clauses: np.ndarray) -> np.ndarray:
    """Per clause: small, and made of literal atoms only (so rows come from hit keys)."""
    plan = ev.plan
    start = plan.clause_bounds[clauses]
    size = plan.clause_bounds[clauses + 1] - start
    _, slot = ranges(start, size)
    literal = ev.exact[ev.anchor_of(plan.clause_atoms[slot])]
    all_literal = np.logical_and.reduceat(literal, np.cumsum(size) - size) if len(slot) else literal
    return all_literal & (size <= FILTER_WIDTH) & (ev.clause_cost[clauses] < ev.num_rows)

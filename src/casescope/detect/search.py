"""Small vectorised search helpers shared by the evaluator."""

from __future__ import annotations

import numpy as np


def isin_sorted(values: np.ndarray, found: np.ndarray) -> np.ndarray:
    """`np.isin(values, found)` for a sorted `found`, by binary search."""
    if not len(found):
        return np.zeros(len(values), dtype=bool)
    slot = np.minimum(np.searchsorted(found, values), len(found) - 1)
    return found[slot] == values


def key_ranges(keys: np.ndarray, atoms: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and end positions in sorted `keys` of each atom's `atom * width + value` keys."""
    return np.searchsorted(keys, atoms * width), np.searchsorted(keys, (atoms + 1) * width)


def distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort-based: much faster than numpy 2's hashing `unique` on the
    small integer keys used here)."""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def distinct_first(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and the position of each one's first occurrence."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    first = np.concatenate(([True], ordered[1:] != ordered[:-1])) if len(order) else order > 0
    return ordered[first], order[first]


def distinct_inverse(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and, for each value, the index of its distinct value."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    new = np.concatenate(([True], ordered[1:] != ordered[:-1])) if len(order) else order > 0
    inverse = np.empty(len(values), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return ordered[new], inverse

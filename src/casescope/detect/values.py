"""Non-literal atoms: masks over a field's distinct values, or over rows.

Globs and regexes run as RE2 kernels (pyarrow) on the distinct values that need them; a
regex RE2 cannot run (look-around, back-references) runs with Python's `re`. Numeric
comparisons cast the values (non-numbers never compare true). Field references compare
two values per row with Polars.

pyarrow compiles the expression on every call, which dominates small batches (a small file
runs a dozen or more regex kernels on a handful of values; `bench/sigma.py`, one batch per
file). So a few values (`SMALL_VALUES`) are searched with the pattern compiled once by
Python's `re` (`re.ASCII`) when that gives RE2's answer: the values are ASCII without
newline or vertical tab (so `$`, `.`, the ASCII classes `s d w b` and case folding mean the
same in both), and the pattern uses no syntax the two read differently (`{,n}`, POSIX
classes); otherwise RE2 runs. `tests/unit/detect/test_values.py` checks that both paths
agree on every pattern of the snapshot.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Callable

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from casescope.detect.atoms import Atom, CompareOp, FieldRefOp, Kind

_COMPARE = {
    CompareOp.LT: np.less,
    CompareOp.LE: np.less_equal,
    CompareOp.GT: np.greater,
    CompareOp.GE: np.greater_equal,
}
_FIELDREF = {
    FieldRefOp.EQ: pl.col("a") == pl.col("b"),
    FieldRefOp.PREFIX: pl.col("a").str.starts_with(pl.col("b")),
    FieldRefOp.SUFFIX: pl.col("a").str.ends_with(pl.col("b")),
    FieldRefOp.CONTAINS: pl.col("a").str.contains(pl.col("b"), literal=True),
}


def bools(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow array as numpy, nulls as False."""
    if array.null_count:
        array = pc.fill_null(array, False)
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=bool)


SMALL_VALUES = 256  # up to this many values, a cached Python pattern beats an RE2 kernel
_READ_DIFFERENTLY = ("{,", "[:")  # RE2 and Python's re disagree on these


@functools.lru_cache(maxsize=8192)
def _python_regex(pattern: str) -> re.Pattern[str]:
    """A pattern RE2 cannot run, compiled once for Python's `re`."""
    return re.compile(pattern)


@functools.lru_cache(maxsize=8192)
def ascii_twin(pattern: str) -> re.Pattern[str] | None:
    """Python's compile of an RE2 pattern that means the same on `plain` values, or None."""
    if not pattern.isascii() or any(text in pattern for text in _READ_DIFFERENTLY):
        return None  # non-ASCII: RE2's Unicode case folding could reach ASCII letters
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # e.g. "possible nested set": read differently
            return re.compile(pattern, re.ASCII)
    except (re.error, Warning, ValueError, OverflowError, RecursionError):
        return None


def plain(text: str) -> bool:
    """ASCII without newline or vertical tab: where `ascii_twin` patterns agree with RE2."""
    return text.isascii() and "\n" not in text and "\v" not in text


def _search_all(search: Callable[[str], object], strings: list[str | None]) -> np.ndarray:
    return np.fromiter((s is not None and search(s) is not None for s in strings), bool)


Values = pa.Array | list[str | None]


def _arrow(values: Values) -> pa.Array:
    return pa.array(values, pa.string()) if isinstance(values, list) else values


def _python(values: Values) -> list[str | None]:
    return values if isinstance(values, list) else values.to_pylist()


def regex_mask(values: Values, pattern: str, python: bool) -> np.ndarray:
    """Unanchored search of `pattern` in each value."""
    if python:  # look-around or back-references: RE2 cannot, Python's re can
        return _search_all(_python_regex(pattern).search, _python(values))
    if len(values) <= SMALL_VALUES:
        twin = ascii_twin(pattern)
        if twin is not None:
            strings = _python(values)
            if all(s is None or plain(s) for s in strings):
                return _search_all(twin.search, strings)
    return bools(pc.match_substring_regex(_arrow(values), pattern))


def value_mask(atom: Atom, values: Values) -> np.ndarray:
    """Per value (lowercased unless the atom is cased): does a GLOB/REGEX/CMP atom hold."""
    if atom.kind is Kind.REGEX:
        return regex_mask(values, atom.text, atom.python)
    if atom.kind is Kind.CMP:
        numbers = pl.Series(_arrow(values)).cast(pl.Float64, strict=False)
        return _COMPARE[atom.op](numbers.fill_null(np.nan).to_numpy(), atom.number)
    if atom.kind is Kind.GLOB:
        return regex_mask(values, atom.text, python=False)
    raise ValueError(f"atom kind {atom.kind} has no value mask")  # pragma: no cover


_FIELDREF_PY: dict[FieldRefOp, Callable[[str, str], bool]] = {
    FieldRefOp.EQ: str.__eq__,
    FieldRefOp.PREFIX: str.startswith,
    FieldRefOp.SUFFIX: str.endswith,
    FieldRefOp.CONTAINS: str.__contains__,
}


def fieldref_mask(op: FieldRefOp, left: Values, right: Values) -> np.ndarray:
    """Per pair of (lowercased) values: equal, or left starts/ends with or contains right
    (a null on either side: False). A few pairs are compared in Python, more with Polars."""
    if len(left) <= SMALL_VALUES:
        test = _FIELDREF_PY[op]
        pairs = zip(_python(left), _python(right), strict=True)
        return np.fromiter((a is not None and b is not None and test(a, b) for a, b in pairs), bool)
    frame = pl.DataFrame({"a": _arrow(left), "b": _arrow(right)})
    return frame.select(_FIELDREF[op].fill_null(False)).to_series().to_numpy().astype(bool)

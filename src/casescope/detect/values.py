"""Non-literal atoms: masks over a field's distinct values, or over rows.

Globs and regexes run as RE2 kernels (pyarrow) on the distinct values that need them; a
regex RE2 cannot run (look-around, back-references) runs with Python's `re`. Numeric
comparisons cast the values (non-numbers never compare true). Field references compare
two values per row with Polars.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from casescope.detect.atoms import Atom, Kind

_COMPARE = {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal}
_FIELDREF = {
    "eq": pl.col("a") == pl.col("b"),
    "prefix": pl.col("a").str.starts_with(pl.col("b")),
    "suffix": pl.col("a").str.ends_with(pl.col("b")),
    "contains": pl.col("a").str.contains(pl.col("b"), literal=True),
}


def bools(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow array as numpy, nulls as False."""
    if array.null_count:
        array = pc.fill_null(array, False)
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=bool)


def regex_mask(values: pa.Array, pattern: str, python: bool) -> np.ndarray:
    """Unanchored search of `pattern` in each value."""
    if python:  # look-around or back-references: RE2 cannot, Python's re can
        search = re.compile(pattern).search
        return np.fromiter(map(bool, map(search, values.to_pylist())), bool, len(values))
    return bools(pc.match_substring_regex(values, pattern))


def value_mask(atom: Atom, values: pa.Array) -> np.ndarray:
    """Per value (lowercased unless the atom is cased): does a GLOB/REGEX/CMP atom hold."""
    if atom.kind is Kind.REGEX:
        return regex_mask(values, atom.text, atom.python)
    if atom.kind is Kind.CMP:
        numbers = pl.Series(values).cast(pl.Float64, strict=False)
        return _COMPARE[atom.op](numbers.fill_null(np.nan).to_numpy(), atom.number)
    if atom.kind is Kind.GLOB:
        return regex_mask(values, atom.text, python=False)
    raise ValueError(f"atom kind {atom.kind} has no value mask")  # pragma: no cover


def fieldref_mask(op: str, left: pa.Array, right: pa.Array) -> np.ndarray:
    """Per pair of (lowercased) values: equal, or left starts/ends with or contains right."""
    frame = pl.DataFrame({"a": left, "b": right})
    return frame.select(_FIELDREF[op].fill_null(False)).to_series().to_numpy().astype(bool)

"""Turn a batch of timestamp strings into one Arrow `timestamp[us, UTC]` array, vectorised.

Understood (each row on its own, so a column may mix them):

- ISO 8601 with a zone: `2024-03-01T10:00:00.123Z`, `…+02:00`, `…+0200`, `…+02`;
- ISO 8601 without a zone, taken as UTC: `2024-03-01T10:00:00`, `2024-03-01 10:00:00.123456`,
  `2024-03-01T10:00`, `2024-03-01` (midnight);
- either of the above followed by ` UTC` (the `evtx` crate's record-header form);
- more than 6 fraction digits are cut to microseconds (not rounded);
- Windows `MM/DD/YYYY HH:MM:SS AM|PM` and `MM/DD/YYYY HH:MM:SS` (24 h), taken as UTC;
- epoch numbers, told apart by magnitude: below 1e11 seconds (until year 5138), below 1e14
  milliseconds, below 1e17 microseconds, otherwise nanoseconds. Fractions are kept.

Anything else, and anything outside years 1-9999, becomes null and is counted as not
understood. The common case (every value zoned ISO 8601, as in EVTX) is one Arrow cast; the
other rules run only when that cast fails, each on the rows it matches.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

logger = logging.getLogger(__name__)

TS_TYPE = pa.timestamp("us", tz="UTC")
_NAIVE_TYPE = pa.timestamp("us")
_MAX_ABS_US = 253_402_300_800 * 1_000_000  # 10000-01-01T00:00:00Z

_DATE_TIME = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
_ZONED = rf"^{_DATE_TIME}(Z|[+-]\d{{2}}(:?\d{{2}})?)$"
_NAIVE = rf"^({_DATE_TIME}|\d{{4}}-\d{{2}}-\d{{2}})$"
_NUMBER = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
_WINDOWS_FORMATS = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S")


@dataclass(frozen=True)
class ParsedTimestamps:
    """A batch's timestamps: `values` has one entry per input; `failed` counts the non-empty
    inputs that were not understood, `example` is the first of them."""

    values: pa.TimestampArray
    failed: int = 0
    example: str | None = None


def parse_timestamps(texts: Sequence[str | None] | pa.Array) -> ParsedTimestamps:
    """Microsecond UTC timestamps for a batch of strings (None and "" give null silently)."""
    array = texts if isinstance(texts, pa.Array) else pa.array(texts, pa.string())
    try:
        return ParsedTimestamps(pc.cast(array, TS_TYPE))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass  # not all of them zoned ISO 8601: take each rule in turn
    text = _normalise(array)
    result = pc.coalesce(
        _cast_where(text, _ZONED, TS_TYPE),
        _cast_where(text, _NAIVE, _NAIVE_TYPE),
        _from_epoch(text),
        *(_windows(text, fmt) for fmt in _WINDOWS_FORMATS),
    )
    result = _in_range(result)
    missed = pc.and_(pc.is_null(result), pc.greater(pc.utf8_length(text), 0))
    failed = pc.sum(missed).as_py() or 0
    example = pc.filter(array, missed)[0].as_py() if failed else None
    return ParsedTimestamps(result, failed, example)


def _normalise(array: pa.Array) -> pa.Array:
    text = pc.utf8_trim_whitespace(array)
    text = pc.replace_substring_regex(text, r"Z?\s+UTC$", "Z")
    return pc.replace_substring_regex(text, r"(\.\d{6})\d+", r"\1")


def _cast_where(text: pa.Array, pattern: str, to: pa.DataType) -> pa.Array:
    """Cast the rows matching `pattern` (others null) to UTC timestamps."""
    matches = pc.fill_null(pc.match_substring_regex(text, pattern), False)
    if not pc.any(matches).as_py():
        return pa.nulls(len(text), TS_TYPE)
    subset = pc.if_else(matches, text, pa.scalar(None, pa.string()))
    try:
        cast = pc.cast(subset, to)
    except pa.ArrowInvalid:  # well-formed but impossible (month 13): row by row
        cast = _cast_each(subset, to)
    return cast.cast(TS_TYPE)  # naive values are taken as UTC


def _cast_each(subset: pa.Array, to: pa.DataType) -> pa.Array:
    """Row by row, for a batch holding a well-formed but impossible value (month 13)."""
    values = []
    for value in subset:
        try:
            values.append(pc.cast(value, to).as_py() if value.is_valid else None)
        except pa.ArrowInvalid:
            values.append(None)
    return pa.array(values, to)


def _from_epoch(text: pa.Array) -> pa.Array:
    matches = pc.fill_null(pc.match_substring_regex(text, _NUMBER), False)
    if not pc.any(matches).as_py():
        return pa.nulls(len(text), TS_TYPE)
    number = pc.cast(pc.if_else(matches, text, pa.scalar(None, pa.string())), pa.float64())
    size = pc.abs(number)
    micros = pc.case_when(
        pc.make_struct(pc.less(size, 1e11), pc.less(size, 1e14), pc.less(size, 1e17)),
        pc.multiply(number, 1e6),
        pc.multiply(number, 1e3),
        number,
        pc.divide(number, 1e3),
    )
    micros = pc.if_else(pc.less(pc.abs(micros), float(_MAX_ABS_US)), micros, None)
    return pc.cast(pc.floor(micros), pa.int64()).cast(TS_TYPE)


def _windows(text: pa.Array, fmt: str) -> pa.Array:
    parsed = pc.strptime(text, format=fmt, unit="us", error_is_null=True)
    return parsed.cast(TS_TYPE)


def _in_range(result: pa.Array) -> pa.Array:
    micros = result.cast(pa.int64())
    inside = pc.less(pc.abs(micros), _MAX_ABS_US)
    return pc.if_else(inside, result, pa.scalar(None, TS_TYPE))


def to_epoch_us(value: object) -> int | None:
    """One value by the same rules: microseconds since the epoch (UTC), or None."""
    if value is None or isinstance(value, bool):
        return None
    text = value if isinstance(value, str) else str(value)
    micros = parse_timestamps([text]).values.cast(pa.int64())[0]
    return micros.as_py()

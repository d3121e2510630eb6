"""The per-batch frame Sigma expressions run on: only the fields the candidate rules name.

Core columns answer to their Sigma names (EventID, Channel, Provider_Name, Computer,
EventRecordID, Level); every other field is pivoted out of the `fields` map once per batch.
Each field gets `v:<name>` (original) and `l:<name>` (lowercased); `l:*` joins every value
of the event for keyword searches.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl
import pyarrow as pa

from casescope.detect.compile import KEYWORDS, lower_col, value_col

CORE_FIELDS = {
    "EventID": "event_id",
    "Channel": "channel",
    "Provider_Name": "provider",
    "Computer": "computer",
    "EventRecordID": "record_id",
    "Level": "level",
}


PAIRS_TYPE = pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))


def _core(batch: pa.RecordBatch, column: str) -> pl.Series:
    series = pl.from_arrow(batch.column(column))
    assert isinstance(series, pl.Series)
    return series.cast(pl.Utf8)


def _pairs(batch: pa.RecordBatch) -> pl.DataFrame:
    """The `fields` map as long (row, key, value) rows."""
    fields = pl.from_arrow(batch.column("fields").cast(PAIRS_TYPE))
    frame = pl.DataFrame(
        {"row": pl.arange(0, batch.num_rows, eager=True, dtype=pl.UInt32), "kv": fields}
    )
    return frame.explode("kv").drop_nulls("kv").unnest("kv")


def _map_fields(pairs: pl.DataFrame, rows: int, names: set[str]) -> pl.DataFrame:
    """Rows x requested map keys (null where an event lacks the key)."""
    index = pl.DataFrame({"row": pl.arange(0, rows, eager=True, dtype=pl.UInt32)})
    wanted = pairs.filter(pl.col("key").is_in(list(names))) if names else pairs.clear()
    if wanted.height == 0:
        return index
    wide = wanted.pivot(on="key", index="row", values="value", aggregate_function="first")
    return index.join(wide, on="row", how="left")


def _all_values(batch: pa.RecordBatch, pairs: pl.DataFrame) -> pl.Series:
    joined = pairs.group_by("row").agg(pl.col("value").str.join("\n"))
    index = pl.DataFrame({"row": pl.arange(0, batch.num_rows, eager=True, dtype=pl.UInt32)})
    values = index.join(joined, on="row", how="left").get_column("value").fill_null("")
    core = [_core(batch, c).fill_null("") for c in ("channel", "provider", "computer")]
    return pl.select(pl.concat_str([*core, values], separator="\n")).to_series()


def build_frame(batch: pa.RecordBatch, names: Iterable[str]) -> pl.DataFrame:
    """The frame holding exactly the columns that `names` need."""
    wanted = set(names)
    core = {n for n in wanted if n in CORE_FIELDS}
    mapped = wanted - core - {KEYWORDS}
    pairs = _pairs(batch)
    frame = _map_fields(pairs, batch.num_rows, mapped)
    columns: list[pl.Series] = []
    for name in core:
        columns.append(_core(batch, CORE_FIELDS[name]).alias(value_col(name)))
    for name in mapped:
        source = frame.get_column(name) if name in frame.columns else None
        if source is None:
            source = pl.Series(name, [None] * batch.num_rows, dtype=pl.Utf8)
        columns.append(source.alias(value_col(name)))
    if KEYWORDS in wanted:
        columns.append(_all_values(batch, pairs).alias(value_col(KEYWORDS)))
    out = pl.DataFrame(columns) if columns else pl.DataFrame({"_": [0] * batch.num_rows})
    return out.with_columns(
        pl.col(value_col(n)).str.to_lowercase().alias(lower_col(n)) for n in wanted
    )

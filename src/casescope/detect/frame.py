"""Per-batch field columns for Sigma atoms: pivoted once, converted and lowercased lazily.

Core columns answer to their Sigma names (EventID, Channel, Provider_Name, Computer,
EventRecordID, Level); every other field comes out of the `fields` map with one Polars
pivot per batch, restricted to the names the candidate rules read. `*` is every value of
the event joined by newlines (keyword searches).
"""

from __future__ import annotations

from collections.abc import Iterable

import ahocorasick
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from casescope.detect.compile import KEYWORDS

CORE_FIELDS = {
    "EventID": "event_id",
    "Channel": "channel",
    "Provider_Name": "provider",
    "Computer": "computer",
    "EventRecordID": "record_id",
    "Level": "level",
}
MISSING = "\x00"
PAIRS_TYPE = pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))


def _pairs(batch: pa.RecordBatch) -> pl.DataFrame:
    """The `fields` map as long (row, key, value) rows."""
    fields = pl.from_arrow(batch.column("fields").cast(PAIRS_TYPE))
    rows = pl.arange(0, batch.num_rows, eager=True, dtype=pl.UInt32)
    return pl.DataFrame({"row": rows, "kv": fields}).explode("kv").drop_nulls("kv").unnest("kv")


class BatchColumns:
    """The columns atoms read, each built on first use and cached for the batch."""

    def __init__(self, batch: pa.RecordBatch, names: Iterable[str]) -> None:
        self.batch = batch
        self.rows = batch.num_rows
        self._pairs = _pairs(batch)
        mapped = {n for n in names if n not in CORE_FIELDS and n != KEYWORDS}
        self._wide = self._pivot(mapped)
        self._original: dict[str, pa.Array] = {}
        self._lower: dict[str, pa.Array] = {}

    def _pivot(self, names: set[str]) -> pl.DataFrame:
        index = pl.DataFrame({"row": pl.arange(0, self.rows, eager=True, dtype=pl.UInt32)})
        wanted = self._pairs.filter(pl.col("key").is_in(list(names)))
        if wanted.height == 0:
            return index
        wide = wanted.pivot(on="key", index="row", values="value", aggregate_function="first")
        return index.join(wide, on="row", how="left", maintain_order="left")

    def _build(self, name: str) -> pa.Array:
        if name in CORE_FIELDS:
            return pc.cast(self.batch.column(CORE_FIELDS[name]), pa.string())
        if name == KEYWORDS:
            return self._all_values()
        if name in self._wide.columns:
            return self._wide.get_column(name).to_arrow().cast(pa.string())
        return pa.nulls(self.rows, pa.string())

    def _all_values(self) -> pa.Array:
        joined = self._pairs.group_by("row").agg(pl.col("value").str.join("\n"))
        index = pl.DataFrame({"row": pl.arange(0, self.rows, eager=True, dtype=pl.UInt32)})
        values = index.join(joined, on="row", how="left", maintain_order="left")
        core = [pc.fill_null(self.batch.column(c), "") for c in ("channel", "provider", "computer")]
        tail = pc.fill_null(values.get_column("value").to_arrow().cast(pa.string()), "")
        return pc.binary_join_element_wise(*core, tail, "\n")

    def original(self, name: str) -> pa.Array:
        if name not in self._original:
            self._original[name] = self._build(name)
        return self._original[name]

    def lower(self, name: str) -> pa.Array:
        """Lowercased, with missing values as a NUL sentinel so matches never yield null."""
        if name not in self._lower:
            self._lower[name] = pc.fill_null(pc.utf8_lower(self.original(name)), MISSING)
        return self._lower[name]

    def present(self, name: str, automaton: ahocorasick.Automaton) -> set[str]:
        """Which literal texts occur anywhere in the field in this batch (one Aho-Corasick
        pass over its distinct values), so atoms whose text is absent are known false
        without a kernel call."""
        found: set[str] = set()
        for value in pc.unique(self.lower(name)).to_pylist():
            if value and value != MISSING:
                found.update(text for _, text in automaton.iter(value))
        return found

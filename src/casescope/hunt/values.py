"""Every searchable value of an event batch, flattened once.

IOCs are matched on the batch's text core columns (`CORE_TEXT_COLUMNS`) and on every value
of its `fields` map; `raw` is not searched (it repeats those values, JSON-escaped). Each
value is an *entry*: the core columns' values come first, column after column, then the
map's values in order. Entries are not deduplicated: on EVTX-like batches, hashing the
values costs more than scanning them all with Aho-Corasick (`bench/ioc.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

#: Core columns searched for IOCs, under these field names; the event index's `search_text`
#: is built from the same columns plus the map's values.
CORE_TEXT_COLUMNS = ("channel", "provider", "computer", "user_name", "user_sid")


@dataclass(frozen=True)
class BatchValues:
    """The entries of one batch: their values, and how to find each one's row and field."""

    seq: np.ndarray  # uint64, per row
    values: pl.Series  # String, one per entry; null or "" never matches
    map_rows: np.ndarray  # int64, the row of each map entry
    map_keys: pa.Array  # string, the key of each map entry

    @property
    def num_core(self) -> int:
        """How many entries come from the core columns."""
        return len(self.seq) * len(CORE_TEXT_COLUMNS)

    def rows(self, entries: np.ndarray) -> np.ndarray:
        """The row (event) of each of `entries`."""
        core = entries < self.num_core
        rows = np.empty(len(entries), dtype=np.int64)
        rows[core] = entries[core] % len(self.seq)
        rows[~core] = self.map_rows[entries[~core] - self.num_core]
        return rows

    def field_names(self, entries: np.ndarray) -> pa.Array:
        """The field name of each of `entries` (a core column name or a map key)."""
        core = entries < self.num_core
        names = np.empty(len(entries), dtype=object)
        core_names = np.asarray(CORE_TEXT_COLUMNS, dtype=object)
        names[core] = core_names[entries[core] // len(self.seq)]
        map_entries = pa.array(entries[~core] - self.num_core, type=pa.int64())
        names[~core] = self.map_keys.take(map_entries).to_numpy(zero_copy_only=False)
        return pa.array(names, type=pa.string())


def batch_values(batch: pa.RecordBatch) -> BatchValues:
    """Flatten a batch in the event schema into its entries."""
    num_rows = batch.num_rows
    fields = batch.column("fields")
    # MapArray.keys/.items ignore a slice's offset: cut the children by the offsets.
    offsets = fields.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    start, stop = int(offsets[0]), int(offsets[-1])
    core = [_as_string(batch.column(name)) for name in CORE_TEXT_COLUMNS]
    values = pa.chunked_array([*core, fields.items.slice(start, stop - start)], type=pa.string())
    return BatchValues(
        seq=batch.column("seq").to_numpy(zero_copy_only=False).astype(np.uint64),
        values=pl.Series("value", values, dtype=pl.String),
        map_rows=np.repeat(np.arange(num_rows, dtype=np.int64), np.diff(offsets)),
        map_keys=fields.keys.slice(start, stop - start),
    )


def _as_string(column: pa.Array) -> pa.Array:
    return column if column.type == pa.string() else column.cast(pa.string())

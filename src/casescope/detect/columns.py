"""One batch's fields as a single space of value *slots*, built with a constant number of
Arrow/numpy calls whatever the number of fields.

Core columns answer to their Sigma names (`EventID`, `Channel`, `Provider_Name`,
`Computer`, `EventRecordID`, `Level`); every other field comes out of the `fields` map,
whose key/value children are contiguous: the map is flattened once, its distinct key names
are looked up in the rule set's field table by key (`atoms.name_key`: `New Value` is
`NewValue`), and all values — map
values and core columns alike — are dictionary-encoded in one call. A *slot* is a distinct
(field, value) pair; slots are sorted by field, so each field's distinct values are one
contiguous range, and their lowercased texts one contiguous slice of one string (what the
Aho-Corasick pass scans). `codes[field, row]` is the slot of a row's value (-1: absent).

When an event carries a name twice (or in two spellings), its first value wins. The
keyword pseudo-field is every value of the map (several per row): its entries are kept
as (row, value) pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from casescope.detect.atoms import name_key
from casescope.detect.search import distinct, distinct_first, distinct_inverse

CORE_COLUMNS = {
    "@event_id": "event_id",
    "@channel": "channel",
    "@provider": "provider",
    "@computer": "computer",
    "@record_id": "record_id",
    "@level": "level",
}


@dataclass
class FieldText:
    """Values as one string plus character offsets (`len(values) + 1` of them)."""

    text: str
    offsets: np.ndarray


def field_text(values: pa.Array) -> FieldText:
    """Concatenate a string array's values (straight from its Arrow buffer)."""
    values = values.cast(pa.string()) if values.type != pa.string() else values
    lengths = pc.utf8_length(values).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if not len(values):
        return FieldText("", offsets)
    raw = np.frombuffer(values.buffers()[1], dtype=np.int32)
    start, end = raw[values.offset], raw[values.offset + len(values)]
    text = str(memoryview(values.buffers()[2])[start:end], "utf-8")
    if len(text) != offsets[-1]:  # pragma: no cover - Arrow strings are valid UTF-8
        text = "".join(values.to_pylist())
    return FieldText(text, offsets)


def _numpy(array: pa.Array) -> np.ndarray:
    return array.to_numpy(zero_copy_only=False).astype(np.int64)


class BatchFields:
    """The fields a rule set reads, for one batch, as value slots."""

    def __init__(self, batch: pa.RecordBatch, field_id: dict[str, int]) -> None:
        self.num_rows = n = batch.num_rows
        fids, rows, values = self._entries(batch, field_id)
        encoded = pc.dictionary_encode(pa.concat_arrays(values))
        self.values = encoded.dictionary  # distinct values of the batch (original case)
        gv = _numpy(encoded.indices)
        self.keyword_rows, self.keyword_values = rows[0], gv[: len(rows[0])]
        fid, row = np.concatenate(fids), np.concatenate(rows)
        use = fid >= 0
        fid, row, gv = fid[use], row[use], gv[use]
        _, first = distinct_first(fid * n + row)  # first value of a row wins
        fid, row, gv = fid[first], row[first], gv[first]
        slot_key, slot = distinct_inverse(fid * len(self.values) + gv)
        self.slot_field = slot_key // max(len(self.values), 1)
        self.slot_value = slot_key % max(len(self.values), 1)
        self.num_slots = len(slot_key)
        present = distinct(fid)
        self.field_local = np.full(len(field_id) + 1, -1, dtype=np.int64)
        self.field_local[present] = np.arange(len(present))
        self.present = present
        self.field_starts = np.searchsorted(self.slot_field, np.append(present, len(field_id)))
        self.codes = np.full(len(present) * n, -1, dtype=np.int32)
        self.codes[self.field_local[fid] * n + row] = slot
        order = np.argsort(slot, kind="stable")
        self.slot_rows = row[order]
        self.slot_starts = np.zeros(self.num_slots + 1, dtype=np.int64)
        np.cumsum(np.bincount(slot, minlength=self.num_slots), out=self.slot_starts[1:])
        self.lower = pc.utf8_lower(self.values.take(pa.array(self.slot_value)))
        self.text = field_text(self.lower)
        self.slot_empty = np.diff(self.text.offsets) == 0
        self._original: pa.Array | None = None
        self._texts: dict[bool, list[str | None]] = {}

    @staticmethod
    def _entries(
        batch: pa.RecordBatch, field_id: dict[str, int]
    ) -> tuple[list[np.ndarray], list[np.ndarray], list[pa.Array]]:
        """(field ids, rows, values) of the map entries, then of each core column."""
        fields = batch.column("fields")
        offsets = fields.offsets.to_numpy().astype(np.int64)
        base, end = int(offsets[0]), int(offsets[-1])
        items = fields.items.slice(base, end - base)
        rows = np.repeat(np.arange(batch.num_rows), np.diff(offsets))
        keys = pc.dictionary_encode(fields.keys.slice(base, end - base))
        names = [field_id.get(name_key(name), -1) for name in keys.dictionary.to_pylist()]
        fid = np.array([*names, -1], dtype=np.int64)[_numpy(keys.indices)]
        if items.null_count:
            valid = pc.is_valid(items).to_numpy(zero_copy_only=False)
            items, rows, fid = items.filter(pa.array(valid)), rows[valid], fid[valid]
        out = ([fid], [rows], [items.cast(pa.string())])
        for key, name in CORE_COLUMNS.items():
            if key in field_id:
                column = batch.column(name)
                if column.null_count:
                    valid = pc.is_valid(column).to_numpy(zero_copy_only=False)
                    present, column = np.flatnonzero(valid), column.filter(pa.array(valid))
                else:
                    present = np.arange(batch.num_rows)
                out[0].append(np.full(len(present), field_id[key], dtype=np.int64))
                out[1].append(present)
                out[2].append(column.cast(pa.string()))
        return out

    def slot_of(self, fields: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Slot of each (field id, row) pair; -1 where the row lacks the field."""
        local = self.field_local[fields]
        slots = np.full(len(rows), -1, dtype=np.int64)
        ok = local >= 0
        slots[ok] = self.codes[local[ok] * self.num_rows + rows[ok]]
        return slots

    def rows_of(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows holding the given slots, and which of `slots` each row holds."""
        first = self.slot_starts[slots]
        counts = self.slot_starts[slots + 1] - first
        which = np.repeat(np.arange(len(slots)), counts)
        offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return self.slot_rows[offset + np.repeat(first, counts)], which

    def spans(self, fields: np.ndarray) -> list[tuple[int, int, int]]:
        """(field id, start, end) character spans of the given present fields' values."""
        local = self.field_local[fields]
        starts = self.text.offsets[self.field_starts[local]]
        ends = self.text.offsets[self.field_starts[local + 1]]
        return [(int(f), int(s), int(e)) for f, s, e in zip(fields, starts, ends, strict=True)]

    def texts(self, slots: np.ndarray, lower: bool) -> list[str | None]:
        """The values of some slots as Python strings: for a few values, indexing a list
        made once per batch costs far less than an Arrow `take` per call."""
        found = self._texts.get(lower)
        if found is None:
            source = self.lower if lower else self.values.take(pa.array(self.slot_value))
            found = self._texts[lower] = source.to_pylist()
        return [found[i] for i in slots.tolist()]

    def strings(self, slots: np.ndarray, lower: bool) -> pa.Array:
        """The values of some slots, lowercased or as written."""
        if lower:
            return self.lower.take(pa.array(slots))
        if self._original is None:
            self._original = self.values.take(pa.array(self.slot_value))
        return self._original.take(pa.array(slots))

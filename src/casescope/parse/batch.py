"""Accumulate normalised events row by row and emit Arrow batches of EVENT_SCHEMA."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pyarrow as pa

from casescope.parse.schema import EVENT_SCHEMA, FIELDS_TYPE

#: (core column, value) of one event, minus seq/fields/raw which the builder handles.
CoreValues = tuple[
    int | None,  # ts, microseconds since the epoch (UTC)
    int | None,  # event_id
    str,  # channel
    str,  # provider
    str,  # computer
    int | None,  # record_id
    int | None,  # level
    str,  # user_name
    str,  # user_sid
]

_CORE_TYPES = [EVENT_SCHEMA.field(i).type for i in range(1, 10)]


Event = tuple[CoreValues, Mapping[str, str], str]  # (core values, fields, raw JSON)


def to_batches(events: Iterator[Event], batch_size: int) -> Iterator[pa.RecordBatch]:
    """Group a parser's events into RecordBatches of at most `batch_size` rows."""
    builder = BatchBuilder()
    for core, fields, raw in events:
        builder.add(core, fields, raw)
        if len(builder) >= batch_size:
            yield builder.flush()
    if len(builder):
        yield builder.flush()


class BatchBuilder:
    """Column lists for one batch; `add` one event, `flush` a RecordBatch."""

    def __init__(self) -> None:
        self.next_seq = 0
        self._reset()

    def _reset(self) -> None:
        self._core: list[list] = [[] for _ in range(9)]
        self._offsets = [0]
        self._keys: list[str] = []
        self._values: list[str] = []
        self._raw: list[str] = []

    def __len__(self) -> int:
        return len(self._raw)

    def add(self, core: CoreValues, fields: Mapping[str, str], raw: str) -> None:
        c = self._core  # unrolled: this runs once per event
        c[0].append(core[0])
        c[1].append(core[1])
        c[2].append(core[2])
        c[3].append(core[3])
        c[4].append(core[4])
        c[5].append(core[5])
        c[6].append(core[6])
        c[7].append(core[7])
        c[8].append(core[8])
        self._keys.extend(fields.keys())
        self._values.extend(fields.values())
        self._offsets.append(len(self._keys))
        self._raw.append(raw)

    def flush(self) -> pa.RecordBatch:
        rows = len(self._raw)
        seq = pa.array(range(self.next_seq, self.next_seq + rows), pa.uint64())
        core = [pa.array(col, type=t) for col, t in zip(self._core, _CORE_TYPES, strict=True)]
        fields = pa.MapArray.from_arrays(
            pa.array(self._offsets, pa.int32()),
            pa.array(self._keys, pa.string()),
            pa.array(self._values, pa.string()),
            type=FIELDS_TYPE,
        )
        raw = pa.array(self._raw, pa.string())
        self.next_seq += rows
        self._reset()
        return pa.RecordBatch.from_arrays([seq, *core, fields, raw], schema=EVENT_SCHEMA)

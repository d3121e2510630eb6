"""Rows an analyzer found in a file, held in Arrow until they are persisted.

A large file's detections are held by its worker from the parse until the completing
transaction. As one dict of Python objects per detection (a datetime, a str per column)
they took ~550 bytes each, and `persist` copied them once more into the INSERT's
parameters: 123,606 detections of a 1 GiB EVTX file took the worker from ~460 to 633 MB
(`bench/worker_memory.py`). In Arrow columns they take ~60 bytes each, and they become
dicts only `INSERT_ROWS` at a time, for the INSERT that writes them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc

#: Rows turned into Python objects (and parameters of one INSERT) at a time.
INSERT_ROWS = 5_000


class HeldRows:
    """Record batches of one schema; iterated as dicts, `INSERT_ROWS` converted at a time."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self._batches: list[pa.RecordBatch] = []
        self._count = 0

    def add(self, columns: list[pa.Array]) -> None:
        """Hold rows given as one array per column of `schema`, in its order."""
        batch = pa.RecordBatch.from_arrays(columns, schema=self.schema)
        if batch.num_rows:
            self._batches.append(batch)
            self._count += batch.num_rows

    def __len__(self) -> int:
        return self._count

    def distinct(self, column: str) -> set[object]:
        """The values of `column` in the held rows."""
        return {v for batch in self._batches for v in pc.unique(batch.column(column)).to_pylist()}

    def drop(self, column: str, values: set[object]) -> int:
        """Drop the rows whose `column` is one of `values`; returns how many."""
        unwanted = pa.array(list(values), self.schema.field(column).type)
        kept = [
            batch.filter(pc.invert(pc.is_in(batch.column(column), unwanted)))
            for batch in self._batches
        ]
        self._batches = [batch for batch in kept if batch.num_rows]
        dropped = self._count - sum(batch.num_rows for batch in self._batches)
        self._count -= dropped
        return dropped

    def chunks(self, rows: int = INSERT_ROWS) -> Iterator[list[dict[str, object]]]:
        """The rows as dicts, at most `rows` per list, in the order they were added."""
        table = pa.Table.from_batches(self._batches, self.schema)
        for offset in range(0, table.num_rows, rows):
            yield table.slice(offset, rows).to_pylist()

    def __iter__(self) -> Iterator[dict[str, object]]:
        for chunk in self.chunks():
            yield from chunk

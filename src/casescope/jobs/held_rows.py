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

    def chunks(self, rows: int = INSERT_ROWS) -> Iterator[list[dict[str, object]]]:
        """The rows as dicts, at most `rows` per list, in the order they were added."""
        table = pa.Table.from_batches(self._batches, self.schema)
        for offset in range(0, table.num_rows, rows):
            yield table.slice(offset, rows).to_pylist()

    def __iter__(self) -> Iterator[dict[str, object]]:
        for chunk in self.chunks():
            yield from chunk

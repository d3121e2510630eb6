"""`export_lines`: a batch's exported lines as the bytes of its `line` column, not copied."""

from __future__ import annotations

import pyarrow as pa
import pytest

from casescope.services.event_search import EXPORT_CHUNK_BYTES, _next_chunk_rows
from casescope.services.search import export_lines

LINES = ["a,1\r\n", "bé,2\r\n", "", "c,3\r\n"]


def _batch(lines: pa.Array) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array(range(len(lines))), lines], ["seq", "line"])


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string(), pa.binary(), pa.large_binary()])
def test_the_lines_end_to_end(kind: pa.DataType) -> None:
    binary = kind in (pa.binary(), pa.large_binary())
    values = [line.encode() for line in LINES] if binary else LINES
    batch = _batch(pa.array(values, kind))
    assert bytes(export_lines(batch)) == "".join(LINES).encode()


def test_a_slice_of_a_batch_gives_only_its_own_lines() -> None:
    """chDB's batches and a limited CLI search are slices of a larger array (an offset)."""
    batch = _batch(pa.array(LINES))
    assert bytes(export_lines(batch.slice(1, 2))) == "bé,2\r\n".encode()
    assert bytes(export_lines(batch.slice(3))) == b"c,3\r\n"
    assert bytes(export_lines(batch.slice(4))) == b""


def test_the_lines_are_not_copied() -> None:
    lines = pa.array(LINES)
    view = export_lines(_batch(lines))
    assert view.obj.address == lines.buffers()[2].address  # the column's own data buffer


def test_a_null_line_is_an_error_not_a_gap() -> None:
    with pytest.raises(ValueError, match="never null"):
        export_lines(_batch(pa.array(["a\n", None])))


@pytest.mark.parametrize(
    ("rows", "line_bytes", "expected"),
    [
        (1_000, 1_000 * 1_500, 2_000),  # narrow events: doubles
        (8_000, 8_000 * 1_500, 10_000),  # ... up to the most
        (10_000, 40 * 2**20, 4_000),  # 4 KB events: a chunk of ~16 MB
        (4_000, 4_000 * 200_000, 100),  # ~200 KB events: never fewer than 100 rows
        (500, 0, 1_000),  # empty lines (cannot happen): doubles
    ],
)
def test_the_next_chunk_follows_the_width_of_the_last(
    rows: int, line_bytes: int, expected: int
) -> None:
    assert EXPORT_CHUNK_BYTES == 16 * 2**20
    assert _next_chunk_rows(rows, line_bytes, 10_000) == expected


def test_the_next_chunk_aims_at_a_smaller_target_once_one_failed() -> None:
    """After a failure the target is half the failed chunk's bytes (`export_chunks`)."""
    assert _next_chunk_rows(250, 2_500_000, 10_000, chunk_bytes=5_000_000) == 500
    assert _next_chunk_rows(500, 5_000_000, 10_000, chunk_bytes=5_000_000) == 500

"""A large EVTX file read as chunk-range slices gives exactly the whole-file events and seqs."""

from __future__ import annotations

import itertools
from pathlib import Path

import pyarrow as pa
import pytest
from bench.common import make_large_evtx

from casescope.model.enums import FileType
from casescope.parse.evtx_layout import CHUNK_SIZE, FILE_HEADER_SIZE, file_header
from casescope.parse.evtx_slices import ChunkRangeView, Slice, chunk_counts, plan_slices
from casescope.parse.files import iter_batches
from casescope.parse.report import ParseReport
from casescope.parse.schema import EVENT_SCHEMA

BATCH = 500


def read(path: Path, part: Slice | None = None) -> tuple[pa.Table, ParseReport]:
    report = ParseReport()
    batches = list(iter_batches(path, FileType.EVTX, report, batch_size=BATCH, part=part))
    return pa.Table.from_batches(batches, EVENT_SCHEMA), report


def assert_slices_equal_whole(path: Path, slices: int) -> int:
    """Read `path` whole and as `slices` slices: the same rows, seqs included; the slices."""
    counts = chunk_counts(path)
    assert counts is not None, path
    planned = plan_slices(counts, slices, min_chunks=1)
    whole, whole_report = read(path)
    parts = []
    for part in planned:
        table, report = read(path, part)
        assert table.num_rows == part.events, (path, part)  # the plan's count is exact
        assert (report.skipped, report.error) == (0, None), (path, part, report.warnings)
        parts.append(table)
    assert pa.concat_tables(parts).equals(whole), path
    assert whole.column("seq").to_pylist() == list(range(whole.num_rows))
    assert whole_report.skipped == 0
    return len(planned)


def test_every_multi_chunk_sample_reads_the_same_in_slices(attack_samples: Path) -> None:
    sliced = 0
    for path in sorted(attack_samples.rglob("*.evtx")):
        counts = chunk_counts(path)
        if counts is None or len(counts) < 2:
            continue
        assert_slices_equal_whole(path, slices=3)
        sliced += 1
    assert sliced >= 10  # the samples hold many multi-chunk logs


def test_a_generated_large_file_reads_the_same_in_slices(
    attack_samples: Path, tmp_path: Path
) -> None:
    path = tmp_path / "large.evtx"
    records = make_large_evtx(path, 6 * 2**20, sorted(attack_samples.rglob("*.evtx")))
    assert sum(chunk_counts(path) or []) == records
    assert assert_slices_equal_whole(path, slices=4) == 4


def test_the_view_is_the_header_for_its_chunks_then_the_chunks(attack_samples: Path) -> None:
    path = max(attack_samples.rglob("*.evtx"), key=lambda p: p.stat().st_size)
    data = path.read_bytes()
    chunks = (len(data) - FILE_HEADER_SIZE) // CHUNK_SIZE
    assert chunks >= 3
    with ChunkRangeView(path, 1, 3) as view:
        got = view.read()
        view.seek(FILE_HEADER_SIZE - 10)
        across = view.read(20)
    start = FILE_HEADER_SIZE + CHUNK_SIZE
    header = file_header(data[:FILE_HEADER_SIZE], 2)
    assert got == header + data[start : start + 2 * CHUNK_SIZE]
    assert across == header[-10:] + data[start : start + 10]


def test_plan_covers_every_chunk_once_with_contiguous_seqs() -> None:
    counts = [70, 3, 90, 80, 1, 60, 75, 70, 71, 72]
    for slices in range(1, 12):
        planned = plan_slices(counts, slices, min_chunks=2)
        assert planned[0].chunk_from == 0 and planned[-1].chunk_to == len(counts)
        assert len(planned) == min(slices, len(counts) // 2)
        for before, after in itertools.pairwise(planned):
            assert (before.chunk_to, before.seq_to) == (after.chunk_from, after.seq_from)
        for part in planned:
            assert part.events == sum(counts[part.chunk_from : part.chunk_to])
            assert part.chunk_to > part.chunk_from


@pytest.mark.parametrize("damage", ["cut", "bad-magic"])
def test_a_file_with_a_damaged_layout_is_not_sliced(
    attack_samples: Path, tmp_path: Path, damage: str
) -> None:
    path = tmp_path / "damaged.evtx"
    make_large_evtx(path, 1 * 2**20, sorted(attack_samples.rglob("*.evtx")))
    data = bytearray(path.read_bytes())
    if damage == "cut":
        data = data[:-100]
    else:
        data[FILE_HEADER_SIZE + 3 * CHUNK_SIZE] ^= 0xFF
    path.write_bytes(bytes(data))
    assert chunk_counts(path) is None

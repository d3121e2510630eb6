"""Which files are parsed in slices, and in how many (`jobs.slices.plan_for`)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from bench.common import make_large_evtx

from casescope.config import Settings
from casescope.jobs.context import FileInfo
from casescope.jobs.slices import plan_for
from casescope.model.enums import FileType

MIB = 2**20


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory, attack_samples: Path) -> Path:
    path = tmp_path_factory.mktemp("plan") / "large.evtx"
    make_large_evtx(path, 8 * MIB, sorted(attack_samples.rglob("*.evtx")))
    return path


def _info(path: Path, file_type: FileType = FileType.EVTX) -> FileInfo:
    return FileInfo(1, 1, "0" * 64, path, file_type, None, {})


@pytest.mark.parametrize(
    ("slice_min_mb", "workers", "slices"),
    [
        (1, 3, 3),  # one per worker
        (2, 8, 3),  # one per whole slice_min_mb (the file is a little under 8 MiB)
        (3, 8, 2),
        (5, 8, None),  # under two slice_min_mb: whole
        (1, 1, None),  # one worker: whole
    ],
)
def test_slices_per_size_and_worker(
    large: Path, slice_min_mb: float, workers: int, slices: int | None
) -> None:
    settings = Settings(slice_min_mb=slice_min_mb, workers=workers)
    planned = plan_for(settings, _info(large))
    assert (len(planned) if planned else None) == slices
    if planned:
        assert planned[0].seq_from == 0 and all(
            a.seq_to == b.seq_from and a.chunk_to == b.chunk_from
            for a, b in itertools.pairwise(planned)
        )


def test_other_formats_and_damaged_layouts_are_parsed_whole(large: Path, tmp_path: Path) -> None:
    settings = Settings(slice_min_mb=1, workers=4)
    assert plan_for(settings, _info(large, FileType.NDJSON)) is None
    cut = tmp_path / "cut.evtx"
    cut.write_bytes(large.read_bytes()[:-1000])  # not a whole number of chunks
    assert plan_for(settings, _info(cut)) is None

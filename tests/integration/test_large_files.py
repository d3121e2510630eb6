"""Worker memory is bounded by configuration, not by the file (issue 4).

Two EVTX files generated from the attack samples' chunks, one 4x the other, are each parsed
in a fresh process the way a worker indexes a file (`parse_probe`: `casescope.parse` at the
configured batch size into a segment); the larger one's peak RSS must stay within a few MB
of the smaller one's. A control holds every batch and must break that bound, so the probe
can see memory that grows with the file. `bench/large_files.py` does the same at 1-2 GB
through `casescope ingest`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import evtx
import pytest
from bench.common import make_large_evtx

from casescope.model.enums import FileType
from casescope.parse.files import estimate_events
from tests.conftest import REPO_ROOT

MIB = 2**20
#: Small enough that a 16 MiB file is many batches past the allocators' warm-up (the peak
#: levels off after ~5 batches), as a worker's 10,000 are past it on a 1 GB file.
BATCH_SIZE = 2_000
SMALL_MIB, FACTOR = 16, 4
#: The larger file holds ~54,000 more events: 10 MB more peak RSS would be ~190 bytes kept
#: per event (an event's raw JSON alone is ~1 KB). Measured: +0-2 MB; the control: +150 MB.
BOUND_MB = 10.0


@dataclass(frozen=True)
class Generated:
    path: Path
    records: int


@dataclass(frozen=True)
class Probe:
    rows: int
    base_mb: float
    peak_mb: float


@pytest.fixture(scope="module")
def evtx_files(
    tmp_path_factory: pytest.TempPathFactory, attack_samples: Path
) -> Iterator[tuple[Generated, Generated]]:
    folder = tmp_path_factory.mktemp("large-evtx")
    samples = sorted(attack_samples.rglob("*.evtx"))
    made = []
    for mib in (SMALL_MIB, SMALL_MIB * FACTOR):
        path = folder / f"{mib}.evtx"
        made.append(Generated(path, make_large_evtx(path, mib * MIB, samples)))
    yield made[0], made[1]
    shutil.rmtree(folder)  # 80 MiB: not left for pytest's rotation


def probe(path: Path, home: Path, *, keep: bool = False) -> Probe:
    """Parse `path` in a fresh process, as a worker would; its rows and peak RSS."""
    env = {**os.environ, "CASESCOPE_HOME": str(home), "CASESCOPE_BATCH_SIZE": str(BATCH_SIZE)}
    command = [sys.executable, "-m", "tests.integration.parse_probe", str(path)]
    done = subprocess.run(
        command + (["--keep"] if keep else []),
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return Probe(**json.loads(done.stdout.splitlines()[-1]))


def crate_count(path: Path) -> int:
    parser = evtx.PyEvtxParser(str(path), number_of_threads=1, validate_checksums=True)
    return sum(1 for _ in parser.records_json())


def test_generated_evtx_is_whole_and_healthy(evtx_files: tuple[Generated, Generated]) -> None:
    for made in evtx_files:
        size = made.path.stat().st_size
        assert size % 65536 == 4096 and size > (SMALL_MIB - 1) * MIB
        assert made.records == crate_count(made.path) == estimate_events(made.path, FileType.EVTX)
    small, large = evtx_files
    assert large.records > (FACTOR - 0.5) * small.records


@pytest.fixture(scope="module")
def small_probe(
    evtx_files: tuple[Generated, Generated], tmp_path_factory: pytest.TempPathFactory
) -> Probe:
    return probe(evtx_files[0].path, tmp_path_factory.mktemp("home"))


def test_worker_memory_does_not_grow_with_file_size(
    evtx_files: tuple[Generated, Generated], small_probe: Probe, tmp_path: Path
) -> None:
    small, large = evtx_files
    first = small_probe
    second = probe(large.path, tmp_path / "home")
    assert (first.rows, second.rows) == (small.records, large.records)  # every record read
    grown = second.peak_mb - first.peak_mb
    assert grown < BOUND_MB, (
        f"peak RSS {first.peak_mb:.0f} MB for {small.records:,} events, "
        f"{second.peak_mb:.0f} MB for {large.records:,}: +{grown:.1f} MB"
    )


def test_the_probe_sees_memory_that_grows_with_the_file(
    evtx_files: tuple[Generated, Generated], small_probe: Probe, tmp_path: Path
) -> None:
    """The control: the same probe holding every batch breaks the bound on the larger file."""
    leaking = probe(evtx_files[1].path, tmp_path / "home", keep=True)
    assert leaking.rows == evtx_files[1].records
    assert leaking.peak_mb - small_probe.peak_mb > 5 * BOUND_MB

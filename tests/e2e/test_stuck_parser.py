"""A parser stuck in a native call that holds the GIL cannot hang `ingest`.

A damaged EVTX whose chunk checksums are still valid makes the `evtx` crate loop inside one
call without releasing the GIL, so the worker's heartbeat thread never runs again. The pool
must bound that worker anyway (time bound, or stall bound when the time bound is long): the
file fails with the reason, the others complete, and no worker is left spinning.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from sqlalchemy import select

from casescope.model.enums import FileStatus, JobState
from casescope.model.tables import EvidenceFile, Job
from tests.e2e.conftest import Cli

FILE_HEADER_SIZE, CHUNK_SIZE = 4096, 65536
STALLING = "Exec_via_cpl_Application_Experience_EventID_17_ControlPanelApplet.evtx"
GOOD = ("rundll32_cmd_schtask.evtx", "rundll32_hollowing_wermgr_masquerading.evtx")

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")


def _chunk_checksums(chunk: bytes | bytearray) -> tuple[int, int]:
    """The records and header checksums of an EVTX chunk, as computed."""
    free_space = struct.unpack_from("<I", chunk, 48)[0]
    records = zlib.crc32(chunk[512:free_space])
    return records, zlib.crc32(chunk[128:512], zlib.crc32(chunk[:120]))


def _stored_checksums(chunk: bytes | bytearray) -> tuple[int, int]:
    """The records and header checksums the chunk header holds (offsets 52 and 124)."""
    return struct.unpack_from("<I", chunk, 52)[0], struct.unpack_from("<I", chunk, 124)[0]


def _stalling_evtx(source: Path) -> bytes:
    """The byte that makes the crate loop forever (tests/unit/parse/test_evtx.py), with the
    chunk's checksums made valid again so that the crate reads the chunk in-process."""
    data = bytearray(source.read_bytes())
    start = FILE_HEADER_SIZE + (4925 - FILE_HEADER_SIZE) // CHUNK_SIZE * CHUNK_SIZE
    chunk = data[start : start + CHUNK_SIZE]
    assert _chunk_checksums(chunk) == _stored_checksums(chunk)  # computed as the crate does
    data[4925] = 0xAC
    records, _ = _chunk_checksums(data[start : start + CHUNK_SIZE])
    struct.pack_into("<I", data, start + 52, records)  # the header checksum covers this one
    _, header = _chunk_checksums(data[start : start + CHUNK_SIZE])
    struct.pack_into("<I", data, start + 124, header)
    return bytes(data)


@pytest.fixture
def evidence(attack_samples: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "evidence"
    folder.mkdir()
    (folder / "stalls.evtx").write_bytes(_stalling_evtx(next(attack_samples.rglob(STALLING))))
    for name in GOOD:
        (folder / name).write_bytes(next(attack_samples.rglob(name)).read_bytes())
    return folder


def _processes_of(home: Path) -> list[int]:
    """Live processes started with this test's CASESCOPE_HOME."""
    marker = f"CASESCOPE_HOME={home}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in environ and state != "Z":
            found.append(int(entry.name))
    return found


def _ingest_within(cli: Cli, evidence: Path, seconds: float) -> float:
    """Run `ingest` in its own session; kill everything it started if it overruns."""
    started = time.monotonic()
    proc = cli.popen("ingest", "--case", "stuck", str(evidence), own_session=True)
    try:
        _, stderr = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        for pid in _processes_of(cli.home):
            os.kill(pid, signal.SIGKILL)
        proc.wait()
        raise AssertionError(f"ingest still running after {seconds:.0f} s") from None
    assert proc.returncode == 0, stderr
    return time.monotonic() - started


def _assert_outcome(cli: Cli, reason: str) -> None:
    with cli.db().session() as session:
        files = {Path(f.original_path).name: f for f in session.scalars(select(EvidenceFile))}
        stuck = session.scalar(select(Job).where(Job.file_id == files["stalls.evtx"].id))
        assert stuck is not None and stuck.state is JobState.FAILED
        assert stuck.attempts == 1  # blamed at once, never re-claimed into the same hang
    assert files["stalls.evtx"].status is FileStatus.FAILED
    assert reason in (files["stalls.evtx"].error or "")
    for name in GOOD:
        assert files[name].status is FileStatus.COMPLETED, files[name].error
        assert files[name].event_count
    deadline = time.monotonic() + 5
    while _processes_of(cli.home) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _processes_of(cli.home), "a worker was left running"


def test_a_parse_stuck_holding_the_gil_fails_by_the_time_bound(cli: Cli, evidence: Path) -> None:
    """The default heartbeat (10 s) and lease, a 3 s time bound: the bound still holds."""
    cli.extra.update(
        CASESCOPE_HEARTBEAT_SECONDS="10",
        CASESCOPE_LEASE_SECONDS="60",
        CASESCOPE_FILE_TIMEOUT_SECONDS="3",
    )
    assert _ingest_within(cli, evidence, 45) < 45
    _assert_outcome(cli, "processing exceeded the time bound (3 s)")


def test_a_stuck_parse_fails_by_the_stall_bound_before_its_lease_expires(
    cli: Cli, evidence: Path
) -> None:
    """The default time bound (30 min): the worker's silence trips the stall bound (half the
    lease, 6 s here) before the lease runs out and another worker re-claims the file."""
    cli.extra.update(CASESCOPE_HEARTBEAT_SECONDS="3", CASESCOPE_LEASE_SECONDS="12")
    assert _ingest_within(cli, evidence, 45) < 45
    _assert_outcome(cli, "processing stalled: the worker ran no Python code for")

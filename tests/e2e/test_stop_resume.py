"""`Ctrl-Z` on `ingest`, then `fg` later: the whole process group (ingest, its pool, the
workers) was stopped for longer than the workers' stall bound. Nothing hung meanwhile, so
no worker may be killed as stalled and no file blamed: the ingest ends as an uninterrupted
one would, every file completed in one attempt."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from casescope.model.enums import FileStatus
from casescope.model.tables import EvidenceFile, Job
from tests.e2e.conftest import Cli
from tests.waiting import wait_for

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process groups and SIGSTOP")

#: Heartbeats every second, leases of 12 s: the stall bound is 6 s (half the lease), and a
#: stop of 9 s outlasts it while every lease renewed just before the stop still holds.
ENV = {"CASESCOPE_HEARTBEAT_SECONDS": "1", "CASESCOPE_LEASE_SECONDS": "12"}
STOPPED_SECONDS = 9.0


def _evidence(attack_samples: Path, folder: Path) -> Path:
    folder.mkdir()
    for n, sample in enumerate(sorted(attack_samples.rglob("*.evtx"))[:80]):
        shutil.copy(sample, folder / f"{n:03d}-{sample.name}")
    return folder


def _completed(cli: Cli) -> int:
    with cli.db().read() as session:
        query = select(func.count()).where(EvidenceFile.status == FileStatus.COMPLETED)
        return session.scalar(query.select_from(EvidenceFile)) or 0


def test_a_stopped_and_resumed_ingest_kills_no_worker(
    cli: Cli, attack_samples: Path, tmp_path: Path
) -> None:
    cli.extra.update(ENV)
    evidence = _evidence(attack_samples, tmp_path / "evidence")
    cli.run("case", "create", "paused")
    proc = cli.popen("ingest", "--case", "paused", str(evidence), own_session=True)
    try:
        wait_for(lambda: _completed(cli) >= 5, "the first files completed", 240)
        os.killpg(proc.pid, signal.SIGSTOP)  # Ctrl-Z: the whole job
        time.sleep(STOPPED_SECONDS)
        os.killpg(proc.pid, signal.SIGCONT)  # fg
        _, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, stderr
    with cli.db().read() as session:
        files = list(session.scalars(select(EvidenceFile)))
        jobs = list(session.scalars(select(Job)))
    assert len(files) >= 70 and all(f.status is FileStatus.COMPLETED for f in files), [
        (f.original_path, f.status, f.error) for f in files if f.status is not FileStatus.COMPLETED
    ]
    # a worker killed while holding files spends an attempt or counts a group death
    assert [
        (j.file_id, j.attempts, j.group_deaths) for j in jobs if j.attempts != 1 or j.group_deaths
    ] == []
    log = (cli.home / "logs" / "casescope.log").read_text()
    assert "processing stalled" not in log and "killing worker" not in log
    assert "the worker pool did not run for" in log

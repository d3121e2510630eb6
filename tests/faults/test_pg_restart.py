"""PostgreSQL (the metadata DB and job queue) is stopped mid-run and started again.

A worker pool is ingesting when an administrator stops the server (`pg_ctl stop -m fast`:
every session is ended) and starts it ~5 s later. The pool must ride the outage out and
finish by itself: every file completed exactly once, nothing in the index or the result
tables twice, and on stderr one clear line per retry wave naming the database, no traceback.

The cluster is this module's own: stopping the suite's shared one would break every other
PostgreSQL test of this process.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from casescope.evidence.intake import ingest_paths
from casescope.model.db import Database
from casescope.model.enums import FileStatus
from casescope.model.tables import EvidenceFile
from casescope.services.cases import create_case
from tests.e2e.conftest import Cli
from tests.faults.conftest import assert_each_file_once, db_for, pool, smallest_samples
from tests.postgres import PostgresCluster

FILES = 60
#: Completed files before the server is stopped: the outage lands mid-run.
STOP_AFTER = 8
OUTAGE_SECONDS = 5.0


def _completed(db: Database) -> int:
    with db.read() as session:
        status = EvidenceFile.status == FileStatus.COMPLETED
        return int(session.scalar(select(func.count()).where(status)) or 0)


def _wait_for_completed(db: Database, count: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while _completed(db) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {count} files completed in {timeout:.0f} s")
        time.sleep(0.05)


def _evidence(attack_samples: Path, target: Path) -> Path:
    target.mkdir()
    for sample in smallest_samples(attack_samples, FILES):
        (target / sample.name).write_bytes(sample.read_bytes())
    return target


#: Small groups and short leases: the outage catches several claims, beats and writes.
RUN_SETTINGS = {
    "CASESCOPE_GROUP_MAX_FILES": "2",
    "CASESCOPE_LEASE_SECONDS": "4",
    "CASESCOPE_HEARTBEAT_SECONDS": "0.5",
}


def _restart_during(run: subprocess.Popen, cluster: PostgresCluster, db: Database) -> str:
    """Stop the server once some files are done, start it again; the run's stderr."""
    try:
        _wait_for_completed(db, STOP_AFTER)
        assert _completed(db) < FILES
        cluster.halt()
        time.sleep(OUTAGE_SECONDS)
        with pytest.raises(OperationalError):  # the outage is real
            _completed(db)
        cluster.resume()
        _, stderr = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    db.engine.dispose()  # its pooled connections died with the server
    assert run.returncode == 0, stderr
    return stderr


def _assert_outage_lines_only(stderr: str) -> None:
    """One line per process and outage, naming the database; nothing else, no traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "nobody noticed the outage"
    assert all("metadata database unreachable" in line for line in lines), stderr


def test_worker_pool_rides_out_a_postgres_restart(
    private_cluster: PostgresCluster, attack_samples: Path, tmp_path: Path
) -> None:
    evidence = _evidence(attack_samples, tmp_path / "evidence")
    cli = Cli(tmp_path / "home", extra={"CASESCOPE_DATABASE_URL": private_cluster.database()})
    db = db_for(cli)
    report = ingest_paths(db, db.settings, create_case(db, "restart"), [evidence])
    assert len(report.queued) == FILES

    stderr = _restart_during(pool(cli, **RUN_SETTINGS), private_cluster, db)

    _assert_outage_lines_only(stderr)
    assert_each_file_once(cli, db, FILES)


def test_ingest_rides_out_a_postgres_restart(
    private_cluster: PostgresCluster, attack_samples: Path, tmp_path: Path
) -> None:
    """`casescope ingest` waits for its files (and loads them into the index as they are
    done) across the outage, as does the pool it started."""
    evidence = _evidence(attack_samples, tmp_path / "evidence")
    cli = Cli(tmp_path / "home", extra={"CASESCOPE_DATABASE_URL": private_cluster.database()})
    db = db_for(cli)
    ingest = subprocess.Popen(
        [sys.executable, "-m", "casescope", "ingest", "--case", "restart", "--workers", "2",
         str(evidence)],
        env={**cli.env, **RUN_SETTINGS},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip

    stderr = _restart_during(ingest, private_cluster, db)

    _assert_outage_lines_only(stderr)
    pool_stderr = (cli.home / "logs" / "pool-stderr.log").read_text()
    assert "Traceback" not in pool_stderr, pool_stderr
    assert_each_file_once(cli, db, FILES)

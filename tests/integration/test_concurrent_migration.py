"""Processes that start together on a new metadata database all find it migrated: `ingest`
starts its worker pool before it opens the database (jobs/pool_process.py), so the two
migrate a new home at the same moment, as team hosts started together do. Each process
here is a real one, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from casescope.model.db import SCHEMA_HEADS
from tests.postgres import PostgresCluster

#: Each process opens the database (which migrates it) once all of them are ready to.
OPEN_TOGETHER = """
import sys, time
from casescope.config import Settings
from casescope.model.db import Database
start = float(sys.argv[1])
time.sleep(max(0.0, start - time.time()))
Database(Settings()).dispose()
"""
PROCESSES = 4


def _open_together(env: dict[str, str]) -> list[subprocess.CompletedProcess[str]]:
    start = str(time.time() + 2.0)  # after every process has imported what it needs
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_TOGETHER, start],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    return [subprocess.CompletedProcess(p.args, p.wait(120), *p.communicate()) for p in procs]


def _revisions(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                row[0]
                for row in connection.execute(text("SELECT version_num FROM alembic_version"))
            }
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_processes_that_open_a_new_database_together_all_succeed(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = {**os.environ, "CASESCOPE_HOME": str(tmp_path / "home")}
    if backend == "postgresql":
        cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
        env["CASESCOPE_DATABASE_URL"] = url = cluster.database()
    else:
        url = f"sqlite:///{tmp_path / 'home' / 'casescope.db'}"
    results = _open_together(env)
    assert [r.returncode for r in results] == [0] * PROCESSES, [r.stderr[-2000:] for r in results]
    assert _revisions(url) == set(SCHEMA_HEADS)

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
from sqlalchemy import Connection, create_engine, text

from casescope.config import Settings
from casescope.model.db import (
    MIGRATION_LOCK,
    SCHEMA_HEADS,
    _upgrade,
    make_engine,
    schema_revisions,
)
from tests.postgres import PostgresCluster
from tests.waiting import wait_for

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
        return set(schema_revisions(engine))
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


#: Opens the database once the test holds the migration lock; says whether Alembic loaded.
OPEN_AND_REPORT = """
import sys
from casescope.config import Settings
from casescope.model.db import Database, schema_revisions, make_engine
settings = Settings()
print("before:", sorted(schema_revisions(make_engine(settings, read_only=True))), flush=True)
Database(settings).dispose()
print("alembic loaded:", "alembic" in sys.modules, flush=True)
"""


def _lock_waiters(connection: Connection) -> int:
    query = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    return int(connection.execute(text(query)).scalar_one())


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_process_that_waited_for_the_migration_finds_it_done_without_alembic(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The usual case of `ingest` and its pool: one migrates, the other waits for its lock.
    The one that waited re-reads the revisions under the lock and does not load Alembic and
    its scripts (a third of a second of CPU while every process of an ingest starts)."""
    env = {**os.environ, "CASESCOPE_HOME": str(tmp_path / "home")}
    if backend == "postgresql":
        cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
        env["CASESCOPE_DATABASE_URL"] = cluster.database()
    settings = Settings(home=tmp_path / "home", database_url=env.get("CASESCOPE_DATABASE_URL"))
    engine = make_engine(settings)
    proc = None
    try:
        with engine.begin() as connection:  # the lock: BEGIN IMMEDIATE, or the advisory lock
            if backend == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            _upgrade(connection)
            proc = subprocess.Popen(
                [sys.executable, "-c", OPEN_AND_REPORT],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert proc.stdout is not None
            # it read the revisions before the lock (none: nothing is committed yet)
            assert proc.stdout.readline().strip() == "before: []"
            if backend == "postgresql":
                wait_for(lambda: _lock_waiters(connection) > 0, "the process to wait for the lock")
            else:  # SQLite's busy handler shows nothing to wait on: give it the time to start
                time.sleep(1.0)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        engine.dispose()
    assert proc.returncode == 0, err[-2000:]
    assert out.strip() == "alembic loaded: False"

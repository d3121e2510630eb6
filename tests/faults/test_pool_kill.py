"""SIGKILLs of the processes around the workers, not only of the workers themselves.

- The pool supervisor that `ingest` started: its workers die with it, and `ingest` must
  release their jobs and start a new pool at once, not wait for the leases (set to 10 minutes
  here, so a run that waited for them would time out).
- The `ingest` process itself while it is still taking evidence in: running the same ingest
  again takes in what was not registered, reports what was, and nothing is lost or doubled.
- Workers holding groups of small files, killed again and again as the kernel's OOM killer
  would: the files of a dying group are retried in smaller groups, then alone, and none of
  them fails for the deaths of its group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from sqlalchemy import func, select

from casescope.evidence.intake import ingest_paths
from casescope.model.db import Database
from casescope.model.enums import FileStatus, JobState
from casescope.model.tables import EvidenceFile, Job, WorkerRecord
from casescope.services.cases import create_case
from casescope.services.doctor import verify_files
from tests.e2e.conftest import Cli
from tests.faults.conftest import (
    children,
    db_for,
    duplicate_results,
    index_counts,
    make_bulk_set,
    pool,
    smallest_samples,
)
from tests.waiting import wait_for


@pytest.fixture
def bulk(tmp_path: Path, attack_samples: Path) -> Path:
    """600 small, distinct EVTX files."""
    make_bulk_set(tmp_path / "bulk", 30, smallest_samples(attack_samples, 20))
    return tmp_path / "bulk"


def _running_jobs(db: Database) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).where(Job.state == JobState.RUNNING)) or 0


def _pool_of(ingest: subprocess.Popen) -> psutil.Process | None:
    """The live `casescope worker` supervisor that `ingest` started (its direct child)."""
    for child in psutil.Process(ingest.pid).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "--exit-when-idle" in child.cmdline():
                return child
        except psutil.Error:  # gone meanwhile
            continue
    return None


def _assert_each_file_once(db: Database, cli: Cli, total: int) -> None:
    with db.session() as session:
        statuses = dict(
            session.execute(select(EvidenceFile.status, func.count()).group_by("status")).all()
        )
        done = session.execute(
            select(Job.file_id, func.count())
            .where(Job.state == JobState.DONE)
            .group_by(Job.file_id)
        ).all()
        verification = verify_files(session)
    assert statuses == {FileStatus.COMPLETED: total}, statuses
    assert len(done) == total and {n for _, n in done} == {1}
    assert verification.ok
    rows, distinct = index_counts(cli)
    assert rows == distinct
    assert duplicate_results(db) == (0, 0)


def test_a_killed_pool_is_replaced_at_once_and_its_jobs_released(cli: Cli, bulk: Path) -> None:
    cli.extra.update(CASESCOPE_LEASE_SECONDS="600", CASESCOPE_GROUP_MAX_FILES="8")
    db = db_for(cli)
    ingest = cli.popen("ingest", "--case", "k", str(bulk))
    try:
        for _ in range(2):  # the first pool, then the one started in its place
            wait_for(lambda: _running_jobs(db) > 0 and _pool_of(ingest), "a pool with jobs")
            first = _pool_of(ingest)
            assert first is not None
            first.kill()
            wait_for(lambda p=first: (_pool_of(ingest) or p).pid != p.pid, "a new pool")
        _, stderr = ingest.communicate(timeout=300)  # waiting for the leases: 600 s
    finally:
        if ingest.poll() is None:
            ingest.kill()
    assert ingest.returncode == 0, stderr
    _assert_each_file_once(db, cli, 600)
    with db.read() as session:
        errors = set(session.scalars(select(Job.last_error).where(Job.last_error.is_not(None))))
    assert any("worker pool" in e and "died (exit code -9)" in e for e in errors), errors
    assert not any("stopped heartbeating" in e for e in errors)


def test_ingest_killed_during_intake_then_run_again_loses_and_doubles_nothing(
    cli: Cli, bulk: Path
) -> None:
    db = db_for(cli)
    command = [sys.executable, "-m", "casescope", "ingest", "--case", "k", str(bulk)]
    ingest = subprocess.Popen(command, env=cli.env, stdout=subprocess.DEVNULL)

    def registered() -> int:
        with db.read() as session:
            return session.scalar(select(func.count()).select_from(EvidenceFile)) or 0

    wait_for(lambda: registered() > 0, "the first registered batch")
    os.kill(ingest.pid, signal.SIGKILL)
    ingest.wait()
    before = registered()
    assert 0 < before < 600  # killed in the middle of the intake

    again = cli.run("ingest", "--case", "k", str(bulk))

    assert f"{600 - before:,} queued, {before:,} duplicates" in again.stdout
    _assert_each_file_once(db, cli, 600)


def _group_holders(db: Database) -> list[int]:
    """Pids of workers holding two or more jobs (a group of small files)."""
    with db.read() as session:
        held = session.execute(
            select(Job.worker_id)
            .where(Job.state == JobState.RUNNING)
            .group_by(Job.worker_id)
            .having(func.count() > 1)
        ).scalars()
        ids = list(held)
        return list(session.scalars(select(WorkerRecord.pid).where(WorkerRecord.id.in_(ids))))


def _most_group_deaths(db: Database) -> int:
    with db.read() as session:
        return session.scalar(select(func.max(Job.group_deaths))) or 0


def test_files_never_fail_for_the_deaths_of_their_group(cli: Cli, bulk: Path) -> None:
    db = db_for(cli)
    report = ingest_paths(db, db.settings, create_case(db, "oom"), [bulk])
    assert len(report.queued) == 600
    workers = pool(cli, CASESCOPE_HEARTBEAT_SECONDS="0.2")  # default MAX_ATTEMPTS: 3
    killed: set[int] = set()  # a killed worker holds its jobs until the pool reaps it
    try:
        while workers.poll() is None and _most_group_deaths(db) < 3 and len(killed) < 40:
            ours = children(workers)  # its workers (forked by its forkserver), nobody else's
            for pid in (set(_group_holders(db)) & ours) - killed:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            time.sleep(0.02)
        assert _most_group_deaths(db) >= 3, len(killed)  # a group died three times over
        assert workers.wait(timeout=300) == 0, workers.stderr.read()
    finally:
        if workers.poll() is None:
            workers.kill()
    _assert_each_file_once(db, cli, 600)

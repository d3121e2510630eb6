"""A pool stopped with SIGTERM (a service manager stopping a worker host, `ingest` ending a
pool it started ahead of its work) ends its workers at once, and what they held goes back
to the queue as it was: not an attempt of the file, not a death of its group."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from casescope.jobs.registry import live_workers
from casescope.model.enums import FileStatus, JobState
from casescope.model.tables import EvidenceFile, Job
from tests.e2e.conftest import Cli
from tests.e2e.test_stuck_parser import STALLING, _stalling_evtx
from tests.waiting import wait_for

#: Long bounds: the pool must not end the stuck worker itself before the test stops it.
PATIENT = {"CASESCOPE_LEASE_SECONDS": "300", "CASESCOPE_FILE_TIMEOUT_SECONDS": "600"}


def _running_job(cli: Cli) -> Job | None:
    with cli.db().session() as session:
        return session.scalar(select(Job).where(Job.state == JobState.RUNNING))


def test_a_stopped_pool_gives_back_the_file_its_worker_held_uncounted(
    cli: Cli, attack_samples: Path, tmp_path: Path
) -> None:
    cli.extra.update(PATIENT)
    stuck = tmp_path / "stalls.evtx"  # the worker stays inside the parser until ended
    stuck.write_bytes(_stalling_evtx(next(attack_samples.rglob(STALLING))))
    standing = cli.popen("worker", "--workers", "1")
    db = cli.db()
    wait_for(lambda: live_workers(db, stale_after=5), "the standing worker to register")
    cli.run("ingest", "--no-wait", "--case", "c", str(stuck))  # served by the standing pool
    wait_for(lambda: _running_job(cli), "the worker to take the file")
    standing.terminate()
    assert standing.wait(60) == 0, standing.stderr.read() if standing.stderr else ""
    with db.session() as session:
        job = session.scalars(select(Job)).one()
        assert job.state is JobState.QUEUED
        assert (job.attempts, job.group_deaths, job.worker_id) == (0, 0, None)
        assert "the worker pool was stopped" in (job.last_error or "")
        file = session.scalars(select(EvidenceFile)).one()
        assert file.status is FileStatus.QUEUED
    db.dispose()

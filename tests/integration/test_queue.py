"""The job table as a queue: claims, leases, attempts, and one active job per file."""

from __future__ import annotations

import multiprocessing
import time

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from casescope.config import Settings
from casescope.jobs import queue
from casescope.model.db import Database
from casescope.model.enums import FileStatus, JobState, Operation
from casescope.model.tables import EvidenceFile, Job
from tests.integration.conftest import add_files


def test_claims_in_order_and_never_twice(db: Database) -> None:
    ids = add_files(db, 3)
    first = queue.claim(db, "w1", 30)
    second = queue.claim(db, "w2", 30)
    third = queue.claim(db, "w1", 30)
    assert [first.file_id, second.file_id, third.file_id] == ids
    assert queue.claim(db, "w3", 30) is None


def test_one_active_job_per_file(db: Database) -> None:
    [file_id] = add_files(db, 1)
    with db.session() as session:
        row = session.get(EvidenceFile, file_id)
        assert queue.enqueue(session, row, Operation.REINDEX, max_attempts=3) is None
    with pytest.raises(IntegrityError), db.session() as session:  # the schema itself refuses
        session.add(Job(file_id=file_id, operation=Operation.FULL, state=JobState.QUEUED))


def test_expired_lease_is_reclaimed_and_attempts_capped(db: Database) -> None:
    [file_id] = add_files(db, 1)
    for attempt in (1, 2, 3):
        job = queue.claim(db, f"w{attempt}", lease_seconds=0.05)
        assert job is not None and job.attempts == attempt
        time.sleep(0.1)
    assert queue.claim(db, "w4", 30) is None  # third expiry: gave up
    with db.session() as session:
        job_row = session.scalar(select(Job).where(Job.file_id == file_id))
        file_row = session.get(EvidenceFile, file_id)
        assert job_row.state is JobState.FAILED
        assert file_row.status is FileStatus.FAILED
        assert "stopped heartbeating" in file_row.error and "3 attempts" in file_row.error


def test_heartbeat_keeps_lease(db: Database) -> None:
    add_files(db, 1)
    job = queue.claim(db, "w1", lease_seconds=0.3)
    for _ in range(4):
        time.sleep(0.1)
        assert queue.renew_lease(db, job.id, "w1", 0.3)
    assert queue.claim(db, "w2", 30) is None
    assert not queue.renew_lease(db, job.id, "intruder", 0.3)


def test_fail_retries_then_fails_permanently(db: Database) -> None:
    [file_id] = add_files(db, 1)
    job = queue.claim(db, "w1", 30)
    assert queue.fail(db, job.id, "w1", "boom", permanent=False) is JobState.QUEUED
    job = queue.claim(db, "w1", 30)
    assert queue.fail(db, job.id, "w1", "gone", permanent=True) is JobState.FAILED
    with db.session() as session:
        assert session.get(EvidenceFile, file_id).error == "gone"
        assert session.scalar(select(Job.last_error).where(Job.id == job.id)) == "gone"


def test_release_worker_requeues_at_once(db: Database) -> None:
    add_files(db, 2)
    queue.claim(db, "dead", 300)
    assert queue.release_worker(db, "dead", "killed") == 1
    claimed = {queue.claim(db, "w", 30).file_id for _ in range(2)}
    assert len(claimed) == 2


def _claim_all(settings_data: dict, worker: str, out) -> None:  # type: ignore[no-untyped-def]
    db = Database(Settings(**settings_data), run_migrations=False)
    got = []
    while (job := queue.claim(db, worker, 60)) is not None:
        got.append(job.id)
        with db.session() as session:
            queue.finish(session, job.id, worker)
    out.put(got)


def test_concurrent_processes_claim_each_job_exactly_once(db: Database, settings: Settings) -> None:
    add_files(db, 200)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_claim_all, args=(settings.model_dump(), f"w{i}", out)) for i in range(4)
    ]
    for p in procs:
        p.start()
    claimed = [job for _ in procs for job in out.get(timeout=120)]
    for p in procs:
        p.join(30)
    assert len(claimed) == 200
    assert len(set(claimed)) == 200


def test_completion_claims_next_job_in_the_same_transaction(db: Database) -> None:
    first_id, second_id = add_files(db, 2)
    first = queue.claim(db, "w1", 30)
    with db.session() as session:
        assert queue.finish(session, first.id, "w1")
        following = queue.claim_in(session, "w1", 30)
    assert following is not None and following.file_id == second_id
    with db.session() as session:
        jobs = {job.file_id: job for job in session.scalars(select(Job))}
        assert jobs[first_id].state is JobState.DONE
        assert jobs[second_id].state is JobState.RUNNING and jobs[second_id].worker_id == "w1"
        assert session.get(EvidenceFile, second_id).status is FileStatus.ESTIMATING
    assert queue.claim(db, "w2", 30) is None  # the next file has exactly one owner


def test_failed_completion_rolls_back_the_next_claim(db: Database) -> None:
    _, second_id = add_files(db, 2)
    first = queue.claim(db, "w1", 30)
    with pytest.raises(RuntimeError), db.session() as session:
        queue.finish(session, first.id, "w1")
        queue.claim_in(session, "w1", 30)
        raise RuntimeError("completion failed")
    second = queue.claim(db, "w2", 30)  # still queued: another worker takes it
    assert second is not None and second.file_id == second_id and second.attempts == 1

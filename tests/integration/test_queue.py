"""The job table as a queue: claims, leases, attempts, and one active job per file."""

from __future__ import annotations

import multiprocessing
import time

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.enums import FileStatus, JobState, Operation
from casescope.model.tables import EvidenceFile, Job
from casescope.workqueue import queue
from tests.integration.conftest import BOTH_DATABASES, add_files

pytestmark = BOTH_DATABASES  # the queue runs on either


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


def _set_sizes(db: Database, sizes: dict[int, int]) -> None:
    with db.session() as session:
        for file_id, size in sizes.items():
            session.get(EvidenceFile, file_id).size_bytes = size


def test_claim_group_takes_small_files_together_each_with_its_own_lease(db: Database) -> None:
    ids = add_files(db, 6)
    _set_sizes(db, {ids[0]: 100, ids[1]: 100, ids[2]: 100, ids[3]: 5000, ids[4]: 100})
    group = queue.claim_group(db, "w1", 30, max_files=8, max_bytes=1000)
    assert [job.file_id for job in group] == ids[:3]  # the 5000-byte file would pass the cap
    assert all(job.attempts == 1 for job in group)
    large = queue.claim_group(db, "w2", 30, max_files=8, max_bytes=1000)
    assert [job.file_id for job in large] == [ids[3]]  # over the cap: alone
    rest = queue.claim_group(db, "w3", 30, max_files=1, max_bytes=1000)
    assert [job.file_id for job in rest] == [ids[4]]  # at most max_files
    with db.session() as session:
        owners = dict(session.execute(select(Job.file_id, Job.worker_id)).all())
        statuses = {f.id: f.status for f in session.scalars(select(EvidenceFile))}
    assert [owners[i] for i in ids] == ["w1", "w1", "w1", "w2", "w3", None]
    assert statuses[ids[0]] is FileStatus.ESTIMATING and statuses[ids[5]] is FileStatus.QUEUED
    assert queue.renew_leases(db, [job.id for job in group], "w1", 30) == 3
    assert queue.renew_leases(db, [job.id for job in group], "intruder", 30) == 0
    with db.session() as session:
        finished = queue.finish_many(session, [j.id for j in group + large], "w1")
    assert finished == {job.id for job in group}  # w2's job is not w1's to finish


def test_claim_group_never_mixes_operations(db: Database) -> None:
    ids = add_files(db, 3)
    with db.session() as session:
        job = session.scalar(select(Job).where(Job.file_id == ids[1]))
        job.operation = Operation.SIGMA_ONLY
    group = queue.claim_group(db, "w1", 30, max_files=8, max_bytes=1000)
    assert [job.file_id for job in group] == [ids[0]]
    assert [j.operation for j in queue.claim_group(db, "w1", 30, 8, 1000)] == [Operation.SIGMA_ONLY]


def test_release_worker_blames_only_the_file_it_was_killed_for(db: Database) -> None:
    ids = add_files(db, 3)
    group = queue.claim_group(db, "killed", 300, max_files=8, max_bytes=1000)
    assert len(group) == 3
    blamed = group[1]
    assert queue.release_worker(db, "killed", "too slow", blame_job_id=blamed.id) == 3
    with db.session() as session:
        states = dict(session.execute(select(Job.file_id, Job.state)).all())
    assert states == {ids[0]: JobState.QUEUED, ids[1]: JobState.FAILED, ids[2]: JobState.QUEUED}


def _claim_and_kill(db: Database, worker: str, max_files: int = 64) -> list[int]:
    """A worker claims a group and dies holding it; the file ids it held."""
    group = queue.claim_group(db, worker, 300, max_files=max_files, max_bytes=10**9)
    queue.release_worker(db, worker, f"worker {worker} died")
    return [job.file_id for job in group]


def test_a_dead_group_is_retried_smaller_and_only_solo_attempts_count(db: Database) -> None:
    ids = add_files(db, 64)
    sizes = [len(_claim_and_kill(db, f"w{n}")) for n in range(3)]
    assert sizes == [64, 16, 4]  # each death: groups a quarter the size
    alone = [_claim_and_kill(db, f"solo{n}") for n in range(3)]
    assert alone == [[ids[0]]] * 3  # then alone, and only these attempts count
    with db.session() as session:
        jobs = {j.file_id: j for j in session.scalars(select(Job))}
        first = session.get(EvidenceFile, ids[0])
    assert jobs[ids[0]].state is JobState.FAILED and first.status is FileStatus.FAILED
    assert "while processing this file alone (gave up after 3 attempts)" in first.error
    others = [jobs[i] for i in ids[1:]]
    assert all(j.state is JobState.QUEUED for j in others)  # three group deaths: none failed
    assert jobs[ids[1]].group_deaths == 3 and jobs[ids[1]].group_limit == 1


def test_expired_leases_of_a_group_count_as_a_group_death(db: Database) -> None:
    add_files(db, 8)
    group = queue.claim_group(db, "lost", lease_seconds=0.05, max_files=8, max_bytes=10**9)
    assert len(group) == 8
    time.sleep(0.1)
    regroup = queue.claim_group(db, "next", 300, max_files=8, max_bytes=10**9)
    assert len(regroup) == 2  # 8 // 4
    with db.session() as session:
        deaths = set(session.scalars(select(Job.group_deaths)))
        errors = set(session.scalars(select(Job.last_error)))
    assert deaths == {1}
    assert errors == {"worker lost stopped heartbeating (in a group of 8 files)"}


def test_release_workers_like_releases_every_worker_of_a_dead_pool(db: Database) -> None:
    add_files(db, 3)
    for worker in ("host-41-aaaa", "host-41-bbbb", "host-412-cccc"):
        queue.claim_group(db, worker, 300, max_files=1, max_bytes=10**9)
    assert queue.release_workers_like(db, "host-41-", "pool died") == 2
    with db.session() as session:
        running = set(session.scalars(select(Job.worker_id).where(Job.state == "running")))
    assert running == {"host-412-cccc"}  # another pool's worker (pid 412) keeps its job

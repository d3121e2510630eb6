"""The slice queue (workqueue/slices.py) on SQLite and PostgreSQL: slices of a running
attempt are claimed once each, a worker writes only while the slice is its own run of the
current attempt, a dead worker's slice is claimed again, and a new attempt's plan leaves
the old attempt's workers nothing to write."""

from __future__ import annotations

from sqlalchemy import select, update

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.enums import JobState, SliceState
from casescope.model.tables import FileSlice, Job
from casescope.parse.evtx_slices import Slice
from casescope.workqueue import queue, slices
from casescope.workqueue.slices import ClaimedSlice
from tests.integration.conftest import BOTH_DATABASES, add_files

pytestmark = BOTH_DATABASES

PLAN = [Slice(0, 10, 0, 1_000), Slice(10, 20, 1_000, 900), Slice(20, 25, 1_900, 450)]
LEASE = 60.0


def _running_job(db: Database) -> queue.ClaimedJob:
    add_files(db, 1)
    job = queue.claim(db, "owner", LEASE)
    assert job is not None
    with db.session() as session:
        slices.plan(session, job.id, job.attempts, job.file_id, PLAN, piece_rows=400)
    return job


def _finish(db: Database, claimed: ClaimedSlice, worker: str) -> bool:
    with db.session() as session:
        return slices.finish(session, claimed, worker, (3, 1), "")


def test_each_slice_is_claimed_once_and_numbered_for_its_pieces(
    db: Database, settings: Settings
) -> None:
    job = _running_job(db)
    taken = [slices.claim(db, f"w{n}", LEASE) for n in range(4)]
    assert [t.number if t else None for t in taken] == [0, 1, 2, None]
    assert [t.part for t in taken if t] == PLAN
    # a slice of n events writes at most n // 400 + 1 pieces: the next starts after them
    assert [t.first_piece for t in taken if t] == [0, 3, 6]
    assert all(_finish(db, t, f"w{n}") for n, t in enumerate(taken) if t)
    state = slices.attempt_slices(db, job.id, job.attempts)
    assert state.done and state.events == 2_350 and state.detections == 9
    assert state.workers == ["w0", "w1", "w2"]


def test_a_dead_workers_slice_is_claimed_again_and_its_old_run_writes_nothing(
    db: Database, settings: Settings
) -> None:
    _running_job(db)
    first = slices.claim(db, "dying", LEASE)
    assert first is not None and first.run == 1
    queue.release_worker(db, "dying", "killed")  # the pool saw it die
    again = slices.claim(db, "next", LEASE)
    assert again is not None and (again.id, again.run) == (first.id, 2)
    assert not _finish(db, first, "dying")  # the old run, if it still ran
    assert not slices.renew(db, first, "dying", LEASE)
    assert _finish(db, again, "next")


def test_an_expired_slice_lease_is_claimed_again(db: Database, settings: Settings) -> None:
    _running_job(db)
    first = slices.claim(db, "stopped", LEASE)
    assert first is not None
    with db.session() as session:
        session.execute(update(FileSlice).where(FileSlice.id == first.id).values(lease_until=0))
    taken = [slices.claim(db, "other", LEASE) for _ in range(3)]
    assert first.id in {t.id for t in taken if t}


def test_a_new_attempt_leaves_the_old_attempts_workers_nothing(
    db: Database, settings: Settings
) -> None:
    job = _running_job(db)
    old = slices.claim(db, "helper", LEASE)
    assert old is not None
    queue.release_worker(db, "owner", "killed")  # the owner died: its attempt ends
    assert slices.claim(db, "idle", LEASE) is None  # a queued job's slices wait
    with db.session() as session:
        assert not slices.held(session, old, "helper")
    retry = queue.claim(db, "owner2", LEASE)
    assert retry is not None and retry.attempts == job.attempts + 1
    with db.session() as session:
        slices.plan(session, retry.id, retry.attempts, retry.file_id, PLAN, piece_rows=400)
    assert not _finish(db, old, "helper")
    with db.read() as session:
        rows = session.execute(select(FileSlice.attempt, FileSlice.state)).all()
        assert {tuple(r) for r in rows} == {(retry.attempts, SliceState.QUEUED)}


def test_slices_of_a_finished_job_are_not_claimed(db: Database, settings: Settings) -> None:
    job = _running_job(db)
    with db.session() as session:
        session.execute(update(Job).where(Job.id == job.id).values(state=JobState.DONE))
    assert slices.claim(db, "idle", LEASE) is None

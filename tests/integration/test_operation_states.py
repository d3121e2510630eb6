"""Property: whatever the order of claims, finishes, failures, pauses, resumes and cancels,
every file is in exactly one state, a paused operation has nothing claimable, a cancelled one
nothing waiting, and the event-stream step never goes back."""

from __future__ import annotations

import contextlib
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from casescope.errors import CasescopeError
from casescope.model.db import Database
from casescope.model.enums import (
    FileStatus,
    JobState,
    Operation,
    OperationKind,
    OperationState,
)
from casescope.model.tables import EvidenceFile, Job
from casescope.services import operations as ops
from casescope.services.doctor import verify_files
from casescope.workqueue import operation_jobs, queue
from tests.integration.conftest import BOTH_DATABASES, add_files

pytestmark = BOTH_DATABASES  # the queue runs on either

ACTIONS = st.lists(
    st.sampled_from(("claim", "finish", "retry", "fail", "pause", "resume", "cancel", "read")),
    max_size=25,
)
_cases = itertools.count()


def _operation_with_files(db: Database, count: int) -> tuple[int, list[int]]:
    ids = add_files(db, count, case_name=f"prop-{next(_cases)}", queued=False)
    with db.read() as session:
        case_id = session.get(EvidenceFile, ids[0]).case_id
    operation_id = ops.create_operation(db, case_id, OperationKind.UPLOAD, "test")
    with db.session() as session:
        for file_id in ids:
            row = session.get(EvidenceFile, file_id)
            operation_jobs.enqueue_in_operation(
                session, row, Operation.FULL, operation_id, max_attempts=2
            )
    ops.seal_operation(db, operation_id)
    return operation_id, ids


def _running(db: Database, operation_id: int) -> Job | None:
    with db.read() as session:
        return session.scalar(
            select(Job).where(Job.operation_id == operation_id, Job.state == JobState.RUNNING)
        )


def _finish(db: Database, job: Job) -> None:
    """What the pipeline does at the end of a file: job done, file completed, one commit."""
    with db.session() as session:
        assert queue.finish(session, job.id, job.worker_id)
        session.execute(
            update(EvidenceFile)
            .where(EvidenceFile.id == job.file_id)
            .values(status=FileStatus.COMPLETED)
        )


def _step(db: Database, operation_id: int, action: str) -> None:
    running = _running(db, operation_id)
    if action == "claim":
        queue.claim(db, "prop-worker", 60)
    elif action in ("finish", "retry", "fail") and running is not None:
        if action == "finish":
            _finish(db, running)
        else:
            queue.fail(db, running.id, running.worker_id, action, permanent=action == "fail")
    elif action in ("pause", "resume", "cancel"):
        with contextlib.suppress(CasescopeError):  # refused in this state: nothing changes
            getattr(ops, action)(db, operation_id, "prop")


def _check(db: Database, operation_id: int, steps: list[int]) -> None:
    progress = ops.get_progress(db, operation_id)
    assert not steps or progress.step >= steps[-1]
    steps.append(progress.step)
    with db.read() as session:
        result = verify_files(session, progress.case_id)
        states = set(session.scalars(select(Job.state).where(Job.operation_id == operation_id)))
    assert result.ok, result.problems
    if progress.state == OperationState.PAUSED:
        assert JobState.QUEUED not in states
    if progress.state == OperationState.CANCELLED:
        assert not states & {JobState.QUEUED, JobState.PAUSED}
    assert progress.files_total == 4 == progress.files_finished + progress.active


def _drain(db: Database, operation_id: int) -> None:
    """Leave nothing claimable for the next example (claims take any case's jobs)."""
    with contextlib.suppress(CasescopeError):
        ops.cancel(db, operation_id, "cleanup")
    while (job := _running(db, operation_id)) is not None:
        queue.fail(db, job.id, job.worker_id, "cleanup", permanent=True)
    ops.get_progress(db, operation_id)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ACTIONS)
def test_any_order_of_actions_keeps_every_file_accounted_for(db: Database, actions) -> None:  # type: ignore[no-untyped-def]
    operation_id, _ids = _operation_with_files(db, 4)
    steps: list[int] = []
    try:
        for action in actions:
            _step(db, operation_id, action)
            _check(db, operation_id, steps)
    finally:
        _drain(db, operation_id)
    _check(db, operation_id, steps)
    assert ops.get_progress(db, operation_id).finished

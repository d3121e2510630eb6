"""Bulk operations on real EVTX: progress, pause/resume at file boundaries, cancel, retry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from casescope.cli.app import app as cli
from casescope.config import Settings
from casescope.errors import NotFoundError
from casescope.evidence.intake import ingest_paths
from casescope.model.db import Database
from casescope.model.enums import FileStatus, JobState, Operation, OperationKind
from casescope.model.tables import Case, EvidenceFile, Job
from casescope.services import operations as ops
from casescope.services.cases import get_or_create_case, list_cases
from casescope.services.doctor import Verification, verify_files
from casescope.services.progress import FileSet, read_progress
from casescope.services.reprocess import requeue_files, retry_operation
from casescope.web.ids import MAX_ID
from casescope.workqueue import queue
from tests.integration.conftest import BOTH_DATABASES
from tests.integration.ioc.conftest import run_worker

pytestmark = BOTH_DATABASES  # the queue runs on either

SAMPLES = (
    "Lateral Movement/LM_Remote_Service02_7045.evtx",
    "Credential Access/kerberos_pwd_spray_4771.evtx",
    "Privilege Escalation/Sysmon_UACME_22.evtx",
    "Execution/exec_wmic_xsl_internet_sysmon_3_1_11.evtx",
)


@pytest.fixture(autouse=True)
def _no_recycling(settings: Settings) -> None:
    """In-process workers must not recycle after each file because this test process (which
    may hold a web app's index) is over the worker RSS bound."""
    settings.worker_max_rss_mb = 1_000_000


@pytest.fixture
def case(db: Database) -> Case:
    return get_or_create_case(db, "ops")[0]


def _ingest(db: Database, settings: Settings, case: Case, paths: list[Path]) -> int:
    with ops.intake_operation(db, case.id, OperationKind.INGEST, "test") as operation_id:
        report = ingest_paths(db, settings, case, paths, operation_id=operation_id)
    assert report.queued and report.operation_id == operation_id
    return operation_id


def _job_states(db: Database, operation_id: int) -> dict[int, JobState]:
    with db.read() as session:
        rows = session.execute(
            select(Job.file_id, Job.state).where(Job.operation_id == operation_id)
        )
        return {file_id: JobState(state) for file_id, state in rows}


def _verified(db: Database) -> Verification:
    with db.read() as session:
        result = verify_files(session)
    assert result.ok, result.problems
    return result


def test_progress_reaches_completion_on_the_attack_samples(
    db: Database, settings: Settings, case: Case, attack_samples: Path
) -> None:
    operation_id = _ingest(db, settings, case, [attack_samples])
    before = ops.get_progress(db, operation_id)
    assert before.sealed and before.state == "running" and before.files_queued == before.files_total
    run_worker(settings)
    p = ops.get_progress(db, operation_id)
    with db.read() as session:
        events = session.scalar(
            select(func.sum(EvidenceFile.event_count)).where(
                EvidenceFile.status == FileStatus.COMPLETED
            )
        )
    assert p.state == "completed" and p.finished and p.finished_at is not None
    assert p.files_total == before.files_total > 200
    assert p.files_done + p.files_failed == p.files_total and p.percent == 100
    assert p.events == events > 8000
    assert p.eta_seconds is None and p.events_per_second > 0
    assert [o.id for o in ops.list_operations(db, case.id)] == [operation_id]


def test_pause_stops_claims_and_resume_finishes_each_file_once(
    db: Database, settings: Settings, case: Case, attack_samples: Path
) -> None:
    operation_id = _ingest(db, settings, case, [attack_samples / s for s in SAMPLES])
    running = queue.claim(db, "w-before-pause", 30)  # a file in progress when the pause comes
    assert running is not None
    assert ops.pause(db, operation_id, "test") == 3
    assert queue.claim(db, "w-idle", 30) is None  # nothing claimable: workers stay idle
    p = ops.get_progress(db, operation_id)
    assert (p.state, p.files_paused, p.files_running) == ("paused", 3, 1) and p.eta_seconds is None
    _verified(db)  # paused files are waiting, not lost
    # The running file's attempt fails while paused: the queue re-queues it, the operation
    # pauses it again as soon as its progress is read.
    queue.fail(db, running.id, "w-before-pause", "worker lost", permanent=False)
    assert ops.get_progress(db, operation_id).files_paused == 4
    assert set(_job_states(db, operation_id).values()) == {JobState.PAUSED}
    with pytest.raises(NotFoundError):
        ops.cancel(db, operation_id + 1000, "test")
    assert ops.resume(db, operation_id, "test") == 4
    run_worker(settings)
    p = ops.get_progress(db, operation_id)
    assert (p.state, p.files_done, p.files_total) == ("completed", 4, 4)
    with db.read() as session:
        done = session.execute(
            select(Job.file_id, func.count())
            .where(Job.state == JobState.DONE)
            .group_by(Job.file_id)
        ).all()
    assert len(done) == 4 and {n for _, n in done} == {1}  # exactly once each
    _verified(db)


def test_files_added_to_a_paused_or_cancelled_intake(
    db: Database, settings: Settings, case: Case, attack_samples: Path
) -> None:
    operation_id = ops.create_operation(db, case.id, OperationKind.UPLOAD, "test")
    ops.pause(db, operation_id, "test")
    ingest_paths(db, settings, case, [attack_samples / SAMPLES[0]], operation_id=operation_id)
    assert set(_job_states(db, operation_id).values()) == {JobState.PAUSED}
    assert queue.claim(db, "w", 30) is None
    _verified(db)
    ops.cancel(db, operation_id, "test")  # files still coming are cancelled as they arrive
    ingest_paths(db, settings, case, [attack_samples / SAMPLES[1]], operation_id=operation_id)
    ops.seal_operation(db, operation_id)
    assert set(_job_states(db, operation_id).values()) == {JobState.CANCELLED}
    p = ops.get_progress(db, operation_id)
    assert p.finished and (p.state, p.files_total, p.files_cancelled) == ("cancelled", 2, 2)
    _verified(db)


def test_cancel_restores_files_and_retry_processes_failed_ones(
    db: Database, settings: Settings, case: Case, attack_samples: Path
) -> None:
    ingest_op = _ingest(db, settings, case, [attack_samples / s for s in SAMPLES[:3]])
    run_worker(settings)
    reindex = requeue_files(db, settings, case.id, Operation.REINDEX, actor="test")
    assert reindex.count == 3 and reindex.operation_id != ingest_op
    running = queue.claim(db, "w-manual", 30)
    assert ops.cancel(db, reindex.operation_id, "test") == 2
    p = ops.get_progress(db, reindex.operation_id)
    assert (p.state, p.files_cancelled, p.files_running, p.finished) == ("cancelled", 2, 1, False)
    with db.read() as session:
        statuses = dict(session.execute(select(EvidenceFile.id, EvidenceFile.status)).all())
    assert statuses[running.file_id] is not FileStatus.COMPLETED
    assert [s for i, s in statuses.items() if i != running.file_id] == [FileStatus.COMPLETED] * 2
    _verified(db)  # nothing in limbo: cancelled files are terminal again
    with pytest.raises(ops.OperationStateError):
        ops.resume(db, reindex.operation_id, "test")
    queue.fail(db, running.id, "w-manual", "boom", permanent=True)  # the running file ends
    p = ops.get_progress(db, reindex.operation_id)
    assert p.finished and (p.files_failed, p.files_cancelled) == (1, 2)
    retried = retry_operation(db, settings, reindex.operation_id, "test")
    assert retried.count == 1 and retried.operation_id is not None
    run_worker(settings)
    assert ops.get_progress(db, retried.operation_id).state == "completed"
    assert ops.get_progress(db, retried.operation_id).files_done == 1
    _verified(db)


def test_a_cancelled_first_intake_is_cancelled_once_and_retry_is_offered_until_done(
    db: Database, settings: Settings, case: Case, attack_samples: Path
) -> None:
    operation_id = _ingest(db, settings, case, [attack_samples / s for s in SAMPLES[:2]])
    assert ops.cancel(db, operation_id, "analyst") == 2
    with db.read() as session:
        rows = session.execute(select(EvidenceFile.status, EvidenceFile.error)).all()
    # cancelled, not failed: the operation, the files and the case list say the same
    assert {status for status, _ in rows} == {FileStatus.CANCELLED}
    assert all("cancelled by analyst" in error for _, error in rows)
    assert _verified(db).cancelled == 2
    p = ops.get_progress(db, operation_id)
    assert p.finished and (p.files_done, p.files_failed, p.files_cancelled) == (0, 0, 2)
    assert p.files_retryable == 2
    progress = read_progress(db, FileSet(case.id, 0, MAX_ID))
    assert (progress.done, progress.failed, progress.cancelled, progress.completed) == (2, 0, 2, 0)
    assert [c.failed for c in list_cases(db)] == [0]
    retried = retry_operation(db, settings, operation_id, "test")
    run_worker(settings)
    assert ops.get_progress(db, retried.operation_id).files_done == 2
    # the cancelled operation's files are done now: it no longer offers a retry
    assert ops.get_progress(db, operation_id).files_retryable == 0
    assert ops.failed_files(db, operation_id) == []


def test_cli_lists_pauses_and_cancels(
    db: Database, settings: Settings, case: Case, attack_samples: Path
) -> None:
    operation_id = _ingest(db, settings, case, [attack_samples / SAMPLES[0]])
    runner = CliRunner()
    assert runner.invoke(cli, ["jobs", "pause", str(operation_id)]).exit_code == 0
    listed = runner.invoke(cli, ["jobs", "list", "--case", case.name, "--format", "json"])
    [row] = json.loads(listed.output)
    assert (row["id"], row["state"], row["files_paused"]) == (operation_id, "paused", 1)
    cancelled = runner.invoke(cli, ["jobs", "cancel", str(operation_id)])
    assert cancelled.exit_code == 0 and "1 files not processed" in cancelled.output
    refused = runner.invoke(cli, ["jobs", "resume", str(operation_id)])
    assert refused.exit_code == 1 and "is cancelled" in refused.output
    assert runner.invoke(cli, ["jobs", "pause", "999"]).exit_code == 1
    _verified(db)

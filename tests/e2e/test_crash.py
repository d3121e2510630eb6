"""Workers die mid-file: the file is re-claimed and completes once, with no duplicate rows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from casescope.evidence.intake import ingest_paths
from casescope.model.enums import FileStatus, JobState
from casescope.model.tables import AuditRecord, EvidenceFile, Job, LoadPiece, WorkerRecord
from casescope.services.cases import create_case
from casescope.store.index import ChdbIndex
from tests.e2e.conftest import Cli

LINES = 300_000


@pytest.fixture(scope="module")
def big_ndjson(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.jsonl"
    with path.open("w") as out:
        for n in range(LINES):
            out.write(
                f'{{"@timestamp": "2024-03-01T10:{n // 6000 % 60:02d}:{n // 100 % 60:02d}Z", '
                f'"host": {{"name": "ws-{n % 50}"}}, "process": {{"command_line": '
                f'"cmd.exe /c echo {n}"}}, "event": {{"code": "{n % 7}"}}, "n": {n}}}\n'
            )
    return path


def _wait_until_busy(cli: Cli, file_id: int, timeout: float = 120) -> int:
    """The pid of the worker processing `file_id`, once it has made progress."""
    db = cli.db()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.session() as session:
            worker = session.scalar(
                select(WorkerRecord).where(WorkerRecord.current_file_id == file_id)
            )
            progress = session.get(EvidenceFile, file_id).events_processed
        if worker is not None and progress > 0:
            return worker.pid
        time.sleep(0.2)
    raise AssertionError("the worker never started on the big file")


def _assert_indexed_once(cli: Cli, file_id: int) -> None:
    with cli.db().session() as session:
        f = session.get(EvidenceFile, file_id)
        assert f.status is FileStatus.COMPLETED, f.error
        assert f.event_count == LINES
        job = session.scalar(select(Job).where(Job.file_id == file_id))
        assert job.state is JobState.DONE and job.attempts == 2
    status = json.loads(cli.run("status", "--format", "json").stdout)
    assert status["events_indexed"] == LINES
    index = ChdbIndex(cli.home / "index")
    try:
        assert index.scalar("SELECT uniqExact(seq) FROM casescope.events") == LINES
    finally:
        index.close()


def _queue(cli: Cli, path: Path) -> int:
    db = cli.db()
    report = ingest_paths(db, db.settings, create_case(db, "crash"), [path])
    return report.queued[0]


def test_sigkill_worker_mid_file(cli: Cli, big_ndjson: Path) -> None:
    file_id = _queue(cli, big_ndjson)
    pool = cli.popen("worker", "--workers", "1", "--exit-when-idle")
    os.kill(_wait_until_busy(cli, file_id), signal.SIGKILL)
    assert pool.wait(240) == 0, pool.stderr.read()
    _assert_indexed_once(cli, file_id)


def test_sigkill_worker_after_its_pieces_were_loaded(cli: Cli, big_ndjson: Path) -> None:
    """The owner (`ingest`) loads a large file's pieces while it is parsed; its worker dies
    after some were loaded: the next attempt replaces them, and each event is in once."""
    cli.extra["CASESCOPE_LOAD_PIECE_EVENTS"] = "10000"
    proc = cli.popen("ingest", "--case", "pieces", str(big_ndjson))
    db = cli.db()
    deadline = time.monotonic() + 120
    loaded = 0
    while not loaded and time.monotonic() < deadline:
        time.sleep(0.2)
        with db.session() as session:
            loaded = session.scalar(select(func.count()).where(LoadPiece.loaded)) or 0
    assert loaded, "no piece was loaded during the parse"
    with db.session() as session:
        file_id = session.scalar(select(EvidenceFile.id))
    os.kill(_wait_until_busy(cli, file_id), signal.SIGKILL)
    assert proc.wait(240) == 0, proc.stderr.read()
    _assert_indexed_once(cli, file_id)  # attempts == 2: it was killed mid-file


def test_whole_pool_killed_then_lease_expires(cli: Cli, big_ndjson: Path) -> None:
    file_id = _queue(cli, big_ndjson)
    pool = subprocess.Popen(
        [sys.executable, "-m", "casescope", "worker", "--workers", "1"],
        env=cli.env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_until_busy(cli, file_id)
    os.killpg(pool.pid, signal.SIGKILL)
    pool.wait(10)
    cli.run("worker", "--workers", "1", "--exit-when-idle", timeout=240)
    _assert_indexed_once(cli, file_id)


def test_file_over_the_time_bound_is_killed_and_failed(
    cli: Cli, big_ndjson: Path, attack_samples: Path
) -> None:
    file_id = _queue(cli, big_ndjson)
    cli.worker(CASESCOPE_FILE_TIMEOUT_SECONDS="1")
    with cli.db().session() as session:
        f = session.get(EvidenceFile, file_id)
        job = session.scalar(select(Job).where(Job.file_id == file_id))
    assert f.status is FileStatus.FAILED and job.attempts == 1
    assert "exceeded the time bound (1 s)" in f.error


def test_workers_are_recycled_after_max_tasks(cli: Cli, attack_samples: Path) -> None:
    samples = sorted(attack_samples.rglob("*.evtx"))[:7]
    db = cli.db()
    ingest_paths(db, db.settings, create_case(db, "recycle"), samples)
    cli.worker(CASESCOPE_WORKER_MAX_TASKS="2")
    with db.session() as session:
        actors = set(session.scalars(select(AuditRecord.actor).where(AuditRecord.file_id > 0)))
        statuses = set(session.scalars(select(EvidenceFile.status)))
    assert statuses == {FileStatus.COMPLETED}
    assert len(actors) == 4  # 7 files, 2 per worker process: 4 processes


def test_no_wait_queues_and_a_background_pool_finishes(cli: Cli, attack_samples: Path) -> None:
    samples = sorted(attack_samples.rglob("*.evtx"))[:4]
    proc = cli.run("ingest", "--no-wait", "--case", "bg", *map(str, samples))
    assert "queued" in proc.stdout
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = json.loads(cli.run("status", "--format", "json").stdout)
        if status["files_by_status"].get("completed") == 4 and not status["awaiting_index_load"]:
            break
        time.sleep(1)
    else:
        raise AssertionError(f"background ingest did not finish: {status}")
    assert status["events_indexed"] == status["events_parsed"] > 0


def test_file_over_the_memory_bound_is_killed_and_failed(cli: Cli, big_ndjson: Path) -> None:
    file_id = _queue(cli, big_ndjson)
    # any worker process is above 64 MB once it has imported pyarrow: the bound must trip
    cli.worker(CASESCOPE_WORKER_HARD_RSS_MB="64")
    with cli.db().session() as session:
        f = session.get(EvidenceFile, file_id)
    assert f.status is FileStatus.FAILED
    assert "exceeded the memory bound" in f.error and "> 64 MB" in f.error

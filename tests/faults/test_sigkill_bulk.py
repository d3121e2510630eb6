"""2,000 files while a worker is SIGKILLed every few seconds: each completes exactly once,
with the metadata DB and job queue on SQLite and on PostgreSQL (the suite's cluster).

Copies of the same sample hold the same events, so every copy must end with the same event,
detection and hit counts whether or not its worker was killed under it; and nothing may be
in the index or the result tables twice.
"""

from __future__ import annotations

import os
import random
import re
import signal
import time
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import func, select

from casescope.evidence.intake import ingest_paths
from casescope.model.db import Database
from casescope.model.enums import FileStatus
from casescope.model.tables import Detection, EvidenceFile, IocHit, Job, WorkerRecord
from casescope.services.cases import create_case
from tests.e2e.conftest import Cli
from tests.faults.conftest import (
    assert_each_file_once,
    children,
    db_for,
    make_bulk_set,
    pool,
    smallest_samples,
)

SAMPLES, COPIES = 10, 200  # 2,000 files
#: Seconds between kills. A new worker needs ~1-2 s to start and a group of 64 files ~1 s:
#: with busy workers read from 0.2 s heartbeats, kills every 0.75 s starved every group.
KILL_EVERY = 4.0
#: Also kill when this share of the files is complete, so at least four kills land however
#: fast this machine gets through the run (a fixed interval alone gave 2 kills in one run).
KILL_AT = (0.1, 0.3, 0.5, 0.7)
#: Small samples of these techniques, and the Sigma rules for them: every copy has hits.
TECHNIQUES = re.compile(r"rundll32|schtask|regsvr32")


@pytest.fixture(params=["sqlite", "postgresql"])
def storm_cli(request: pytest.FixtureRequest, tmp_path: Path) -> Cli:
    """The commands' settings: all embedded, or the metadata DB and job queue on PostgreSQL
    (claims by `FOR UPDATE SKIP LOCKED`) beside the embedded index."""
    home = tmp_path / "home"
    if request.param == "sqlite":
        return Cli(home)
    cluster = request.getfixturevalue("postgres_cluster")
    return Cli(home, extra={"CASESCOPE_DATABASE_URL": cluster.database()})


@pytest.fixture
def bulk(tmp_path: Path, attack_samples: Path) -> Path:
    small = smallest_samples(attack_samples, 300)
    samples = sorted(p for p in small if TECHNIQUES.search(p.name))[:SAMPLES]
    make_bulk_set(tmp_path / "bulk", COPIES, samples)
    return tmp_path / "bulk"


def _rules_subset(sigma_dir: Path, target: Path) -> Path:
    target.mkdir()
    for rule in (sigma_dir / "rules" / "windows" / "process_creation").glob("*.yml"):
        if TECHNIQUES.search(rule.name):
            (target / rule.name).write_bytes(rule.read_bytes())
    return target


def _busy_workers(db: Database, ours: set[int]) -> list[int]:
    with db.session() as session:
        pids = session.scalars(
            select(WorkerRecord.pid).where(WorkerRecord.current_file_id.is_not(None))
        )
        return sorted(set(pids) & ours)


def _completed(db: Database) -> int:
    with db.read() as session:
        status = EvidenceFile.status == FileStatus.COMPLETED
        return int(session.scalar(select(func.count()).where(status)) or 0)


def _run_killing(cli: Cli, db: Database) -> int:
    """Run a pool to the end, SIGKILLing one of its busy workers every `KILL_EVERY` seconds
    and whenever the completed files pass one of `KILL_AT`, so the faults are spread over
    the whole run however fast this machine gets through it."""
    # Busy workers are read from their heartbeat rows: beat often, or a short run shows none.
    workers = pool(cli, CASESCOPE_MAX_ATTEMPTS="50", CASESCOPE_HEARTBEAT_SECONDS="0.2")
    kills, rng, marks = 0, random.Random(7), list(KILL_AT)
    last_kill = time.monotonic()
    deadline = last_kill + 400
    while workers.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        passed = marks and _completed(db) >= marks[0] * SAMPLES * COPIES
        if not passed and time.monotonic() - last_kill < KILL_EVERY:
            continue
        busy = _busy_workers(db, children(workers))
        if busy:
            os.kill(rng.choice(busy), signal.SIGKILL)
            kills, last_kill = kills + 1, time.monotonic()
            if passed:
                marks.pop(0)
    if workers.poll() is None:
        workers.kill()
        raise AssertionError("the pool did not finish")
    assert workers.returncode == 0, workers.stderr.read()
    return kills


def _per_sample(db: Database, model: type) -> dict[str, set[int]]:
    """For each sample (the name after the copy folder), the set of per-copy counts."""
    with db.session() as session:
        counts = dict(
            session.execute(select(model.file_id, func.count()).group_by(model.file_id)).all()
        )
        files = session.execute(select(EvidenceFile.id, EvidenceFile.original_path)).all()
    by_sample: dict[str, set[int]] = defaultdict(set)
    for file_id, original in files:
        by_sample[Path(original).name].add(counts.get(file_id, 0))
    return by_sample


def test_sigkill_every_few_seconds_during_2000_files(
    storm_cli: Cli, bulk: Path, sigma_dir: Path, tmp_path: Path
) -> None:
    cli = storm_cli
    cli.run("rules", "import", str(_rules_subset(sigma_dir, tmp_path / "rules")))
    db = db_for(cli, max_attempts=50)
    report = ingest_paths(db, db.settings, create_case(db, "faults"), [bulk])
    assert len(report.queued) == SAMPLES * COPIES
    cli.run("ioc", "add", "--case", "faults", "rundll32.exe", "cmd.exe", "schtasks.exe")

    kills = _run_killing(cli, db)

    with db.read() as session:
        retried = session.scalar(select(func.count()).where(Job.attempts > 1))
    assert kills >= 3 and retried >= 1, (kills, retried)  # the faults really happened
    assert_each_file_once(cli, db, SAMPLES * COPIES)
    for model in (Detection, IocHit):
        by_sample = _per_sample(db, model)
        assert all(len(counts) == 1 for counts in by_sample.values()), (model, by_sample)
    assert sum(next(iter(c)) for c in _per_sample(db, Detection).values()) > 0
    assert sum(next(iter(c)) for c in _per_sample(db, IocHit).values()) > 0

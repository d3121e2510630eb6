"""Fault tests: real worker pools that are killed, starved of disk, or robbed of evidence."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from bench.common import make_bulk_set
from sqlalchemy import func, select

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.tables import Detection, EvidenceFile, IocHit
from casescope.store.index import ChdbIndex
from tests.e2e.conftest import Cli, cli
from tests.postgres import PostgresCluster

__all__ = ["cli", "make_bulk_set"]


@pytest.fixture(scope="module")
def private_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL server of the module's own, which its tests may stop and start: the
    suite's shared one must stay up for every other PostgreSQL test of this process."""
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    cluster.stop()


def smallest_samples(attack_samples: Path, count: int) -> list[Path]:
    """The `count` smallest attack samples (stable order): cheap to parse many times."""
    by_size = sorted(attack_samples.rglob("*.evtx"), key=lambda p: (p.stat().st_size, p.name))
    return by_size[:count]


def pool(cli: Cli, workers: int = 2, **env: str) -> subprocess.Popen:
    """`casescope worker --exit-when-idle` with extra settings, in the background."""
    command = ["worker", "--workers", str(workers), "--exit-when-idle"]
    return subprocess.Popen(
        [sys.executable, "-m", "casescope", *command],
        env={**cli.env, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def children(proc: subprocess.Popen) -> set[int]:
    """Pids of the processes `proc` started (never anyone else's)."""
    try:
        return {c.pid for c in psutil.Process(proc.pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def db_for(cli: Cli, **settings: object) -> Database:
    """The metadata DB of `cli`'s commands (its CASESCOPE_DATABASE_URL when it has one)."""
    url = cli.extra.get("CASESCOPE_DATABASE_URL")
    if url is not None:
        settings = {"database_url": url, **settings}
    return Database(Settings(home=cli.home, **settings))  # type: ignore[arg-type]


def index_counts(cli: Cli) -> tuple[int, int]:
    """(rows, distinct (file_id, seq)) in the event index."""
    cli.run("status")  # the index owner loads every ready segment
    index = ChdbIndex(cli.home / "index")
    try:
        rows = index.scalar("SELECT count() FROM casescope.events")
        distinct = index.scalar("SELECT uniqExact(file_id, seq) FROM casescope.events")
    finally:
        index.close()
    return int(rows), int(distinct)


def duplicate_results(db: Database) -> tuple[int, int]:
    """(detections, IOC hits) that repeat an earlier one for the same event."""
    with db.session() as session:
        detections = session.scalar(select(func.count()).select_from(Detection))
        distinct_detections = session.scalar(
            select(func.count()).select_from(
                select(Detection.file_id, Detection.seq, Detection.rule_id).distinct().subquery()
            )
        )
        hits = session.scalar(select(func.count()).select_from(IocHit))
        distinct_hits = session.scalar(
            select(func.count()).select_from(
                select(IocHit.file_id, IocHit.seq, IocHit.ioc_id, IocHit.field)
                .distinct()
                .subquery()
            )
        )
    return detections - distinct_detections, hits - distinct_hits


def events_by_file(db: Database) -> dict[str, int]:
    with db.session() as session:
        return dict(session.execute(select(EvidenceFile.original_path, EvidenceFile.event_count)))


def assert_each_file_once(cli: Cli, db: Database, files: int) -> None:
    """Every one of `files` files completed by exactly one done job, accounted for, and in
    the index once: rows = distinct (file_id, seq) = parsed events; no result twice."""
    from casescope.model.enums import FileStatus, JobState
    from casescope.model.tables import Job
    from casescope.services.doctor import verify_files

    with db.session() as session:
        statuses = dict(
            session.execute(select(EvidenceFile.status, func.count()).group_by("status")).all()
        )
        done_jobs = dict(
            session.execute(
                select(Job.file_id, func.count())
                .where(Job.state == JobState.DONE)
                .group_by(Job.file_id)
            ).all()
        )
        parsed = session.scalar(select(func.sum(EvidenceFile.event_count)))
        verification = verify_files(session)
    assert statuses == {FileStatus.COMPLETED: files}
    assert len(done_jobs) == files and set(done_jobs.values()) == {1}
    assert verification.ok and verification.completed == files
    rows, distinct = index_counts(cli)
    assert rows == distinct == parsed
    assert duplicate_results(db) == (0, 0)

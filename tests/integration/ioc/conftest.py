"""Fixtures for IOC tests: a case with real EVTX attack samples, and an in-process worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from casescope.config import Settings
from casescope.evidence.intake import ingest_paths
from casescope.jobs.worker import worker_main
from casescope.model.db import Database
from casescope.model.tables import Case, IocHit
from casescope.services.cases import get_or_create_case
from casescope.workqueue import queue

SHARP_RDP = "Lateral Movement/LM_sysmon_3_12_13_1_SharpRDP.evtx"
WMIC_XSL = "Execution/exec_wmic_xsl_internet_sysmon_3_1_11.evtx"


@pytest.fixture
def samples(attack_samples: Path) -> list[Path]:
    """Two small Sysmon samples: SharpRDP (192.168.56.1 -> .101) and WMIC XSL (C2 names)."""
    return [attack_samples / SHARP_RDP, attack_samples / WMIC_XSL]


@pytest.fixture
def case(db: Database) -> Case:
    return get_or_create_case(db, "ioc-case")[0]


def ingest(db: Database, settings: Settings, case: Case, paths: list[Path]) -> list[int]:
    """Take the files in and run a worker in this process until the queue is empty."""
    report = ingest_paths(db, settings, case, paths)
    assert len(report.queued) == len(paths)
    run_worker(settings)
    return report.queued


def run_worker(settings: Settings) -> None:
    """Run workers in this process until the queue is empty.

    A worker returns early to be recycled when its RSS is over `worker_max_rss_mb`, which a
    test process that has loaded much may be: start another one then, as the pool would.
    """
    db = Database(settings, run_migrations=False)
    try:
        for _ in range(50):
            worker_main(settings, "test-worker", exit_when_idle=True)
            if not queue.has_active_jobs(db):
                return
        raise AssertionError("the queue was not drained")
    finally:
        db.dispose()


HitKey = tuple[int, int, int, str]  # file id, seq, ioc id, field


def stored_hits(db: Database) -> set[HitKey]:
    with db.read() as session:
        rows = session.execute(select(IocHit.file_id, IocHit.seq, IocHit.ioc_id, IocHit.field))
        return {tuple(row) for row in rows}  # type: ignore[misc]


def hit_count(db: Database) -> int:
    with db.read() as session:
        return len(session.scalars(select(IocHit.id)).all())

"""Health and metrics of a running casescope: store, DB, workers, disk, memory, queue.

The figures are collected by `serve`'s health refresher (web/health.py) and served from its
cache; errors are logged here and reported as a bare `error`, never with their text.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

import psutil
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from casescope.config import Settings
from casescope.jobs.launcher import PoolFailure, pool_failure_since_work
from casescope.jobs.registry import HostInfo, WorkerInfo, hosts_of, live_workers
from casescope.model.db import Database
from casescope.model.enums import FileStatus, JobState
from casescope.model.outage import is_outage
from casescope.model.tables import EvidenceFile, Job, Segment
from casescope.workqueue import queue

logger = logging.getLogger(__name__)

MEMORY_WARN_FRACTION = 0.8


class ComponentStatus(StrEnum):
    """Whether a part of the system (the metadata DB, the event index) answered."""

    OK = "ok"
    ERROR = "error"
    #: The metadata DB server is down or cannot be reached (not a fault of its data).
    UNREACHABLE = "unreachable"


@dataclass
class SystemReport:
    ok: bool = True
    db: ComponentStatus = ComponentStatus.OK
    store: ComponentStatus = ComponentStatus.OK
    events_indexed: int = 0
    workers: list[WorkerInfo] = field(default_factory=list)
    #: The hosts of the live workers, each with the files its workers hold.
    hosts: list[HostInfo] = field(default_factory=list)
    queue: dict[str, int] = field(default_factory=dict)
    disk_total_bytes: int = 0
    disk_free_bytes: int = 0
    #: What the home itself takes: evidence, segments, the metadata DB and the event index.
    home_used_bytes: int = 0
    memory_used_mb: float = 0.0
    memory_limit_mb: int = 0
    memory_warning: bool = False
    #: Why no worker runs while files wait: the pool kept dying at its start (its error).
    pool_failure: PoolFailure | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def collect_system(
    db: Database,
    settings: Settings,
    count_events: Callable[[], int] | None,
    home_used: Callable[[], int] | None = None,
) -> SystemReport:
    """The figures; `count_events` asks the index (None: no index), `home_used` measures the
    home (default `home_usage`)."""
    report = SystemReport(memory_limit_mb=settings.memory_limit_mb)
    try:
        with db.read() as session:
            session.execute(text("SELECT 1"))
            report.queue = {s.value: n for s, n in queue.queue_depth(session).items()}
    except SQLAlchemyError as exc:  # health must report, not raise
        report.ok, report.db = False, _db_failure(exc)
    if count_events is not None:
        try:
            report.events_indexed = count_events()
        except (RuntimeError, OSError) as exc:  # chDB errors are RuntimeErrors
            logger.warning("health: the event index did not answer: %s", exc)
            report.ok, report.store = False, ComponentStatus.ERROR
    if report.db is ComponentStatus.OK:
        report.workers = live_workers(db, stale_after=settings.heartbeat_seconds * 3)
        report.hosts = hosts_of(db, report.workers)
        if not report.workers:
            report.pool_failure = pool_failure_since_work(db)
    usage = shutil.disk_usage(settings.home_dir)
    report.disk_total_bytes, report.disk_free_bytes = usage.total, usage.free
    report.home_used_bytes = home_used() if home_used else home_usage(db, settings)
    memory = psutil.virtual_memory()
    report.memory_used_mb = round((memory.total - memory.available) / 2**20, 1)
    report.memory_warning = memory_warning(report.memory_used_mb, settings.memory_limit_mb)
    return report


def _db_failure(exc: SQLAlchemyError) -> ComponentStatus:
    """What a failed look at the metadata DB means. An outage is logged once by the loops
    that wait for the database (model/outage.py), not on every health round."""
    if is_outage(exc):
        logger.debug("health: the metadata DB is unreachable: %s", exc)
        return ComponentStatus.UNREACHABLE
    logger.warning("health: the metadata DB did not answer: %s", exc)
    return ComponentStatus.ERROR


def memory_warning(used_mb: float, limit_mb: int) -> bool:
    return used_mb > MEMORY_WARN_FRACTION * limit_mb


def _tree_bytes(path: Path) -> int:
    """Bytes of the regular files under `path` (files vanishing meanwhile are skipped)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += Path(root, name).lstat().st_size
    return total


def home_usage(db: Database, settings: Settings) -> int:
    """Disk use of the home: evidence and segments from their rows (no walk over thousands of
    files), the metadata DB and the index directory from the disk."""
    try:
        with db.read() as session:
            evidence = session.scalar(select(func.coalesce(func.sum(EvidenceFile.size_bytes), 0)))
            segments = session.scalar(select(func.coalesce(func.sum(Segment.size_bytes), 0)))
    except SQLAlchemyError:
        evidence = segments = 0
    db_files = settings.home_dir.glob("casescope.db*")
    own = sum(p.stat().st_size for p in db_files if p.is_file())
    return int(evidence or 0) + int(segments or 0) + own + _tree_bytes(settings.index_dir)


def _metric(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _job_seconds(session: Session) -> tuple[float, int]:
    """Sum and count of the durations of finished jobs, added up by the DB (no row scan)."""
    started, finished = Job.started_at, Job.finished_at
    if session.get_bind().dialect.name == "sqlite":
        seconds = (func.julianday(finished) - func.julianday(started)) * 86400.0
    else:
        seconds = func.extract("epoch", finished - started)
    total, count = session.execute(
        select(func.coalesce(func.sum(seconds), 0.0), func.count()).where(
            Job.state == JobState.DONE, started.is_not(None), finished.is_not(None)
        )
    ).one()
    return float(total or 0.0), int(count or 0)


def prometheus_text(
    db: Database, events_indexed: int | None, hosts: Sequence[HostInfo] = ()
) -> str:
    """The metrics in the Prometheus text exposition format (`events_indexed` None: no index
    or it did not answer; `hosts`: those with live workers)."""
    lines: list[str] = []
    with db.read() as session:
        by_status = dict(
            session.execute(
                select(EvidenceFile.status, func.count()).group_by(EvidenceFile.status)
            ).all()
        )
        parsed = session.scalar(select(func.coalesce(func.sum(EvidenceFile.event_count), 0)))
        depth = queue.queue_depth(session)
        job_seconds, jobs_done = _job_seconds(session)
        with_segment = session.scalar(
            select(func.count()).where(EvidenceFile.segment_id.is_not(None))
        )
        segments = session.scalar(select(func.count(func.distinct(EvidenceFile.segment_id))))
    _metric(lines, "casescope_files", "gauge", "Evidence files by status.")
    for status in FileStatus:
        lines.append(
            f'casescope_files{{status="{_label(status.value)}"}} {by_status.get(status, 0)}'
        )
    _metric(lines, "casescope_events_ingested_total", "counter", "Events parsed into segments.")
    lines.append(f"casescope_events_ingested_total {int(parsed or 0)}")
    if events_indexed is not None:
        _metric(lines, "casescope_events_indexed", "gauge", "Events in the event index.")
        lines.append(f"casescope_events_indexed {events_indexed}")
    _metric(lines, "casescope_queue_depth", "gauge", "Jobs by state.")
    for state in JobState:
        lines.append(f'casescope_queue_depth{{state="{state.value}"}} {depth.get(state, 0)}')
    _metric(lines, "casescope_job_duration_seconds", "summary", "Durations of finished jobs.")
    lines.append(f"casescope_job_duration_seconds_sum {job_seconds:.3f}")
    lines.append(f"casescope_job_duration_seconds_count {jobs_done}")
    hits = (with_segment or 0) - (segments or 0)
    rate = hits / with_segment if with_segment else 0.0
    _metric(lines, "casescope_segment_cache_hit_ratio", "gauge", "Files that re-used a segment.")
    lines.append(f"casescope_segment_cache_hit_ratio {rate:.4f}")
    _host_metrics(lines, hosts)
    return "\n".join(lines) + "\n"


def _host_metrics(lines: list[str], hosts: Sequence[HostInfo]) -> None:
    """Per host with live workers: how many, and the files they hold (running jobs)."""
    _metric(lines, "casescope_workers", "gauge", "Live workers by host.")
    for host in hosts:
        lines.append(f'casescope_workers{{host="{_label(host.host)}"}} {host.workers}')
    _metric(lines, "casescope_files_held", "gauge", "Files being processed, by host.")
    for host in hosts:
        lines.append(f'casescope_files_held{{host="{_label(host.host)}"}} {host.files_held}')


def case_queue(db: Database, case_ids: set[int]) -> dict[str, int]:
    """Jobs by state, of the files of these cases only."""
    if not case_ids:
        return {}
    query = (
        select(Job.state, func.count())
        .join(EvidenceFile, EvidenceFile.id == Job.file_id)
        .where(EvidenceFile.case_id.in_(case_ids))
        .group_by(Job.state)
    )
    with db.read() as session:
        return {JobState(state).value: n for state, n in session.execute(query).all()}


def scoped_report(db: Database, report: SystemReport, case_ids: set[int] | None) -> dict:
    """The report as a user may see it: all of it for admins (`case_ids` None); for others
    the queue of their cases and, of the workers, only which file of their cases each is on
    (no pid, host, memory or files of other cases)."""
    data = report.as_dict()
    if case_ids is None:
        return data
    file_ids = {w.current_file_id for w in report.workers if w.current_file_id is not None}
    with db.read() as session:
        cases = dict(
            session.execute(
                select(EvidenceFile.id, EvidenceFile.case_id).where(EvidenceFile.id.in_(file_ids))
            ).all()
        )
    data["queue"] = case_queue(db, case_ids)
    if report.pool_failure is not None:  # its detail is the pool's stderr: paths, tracebacks
        data["pool_failure"] = {
            "at": report.pool_failure.at,
            "detail": "the worker pool fails to start; an admin can see why",
        }
    data.pop("hosts")  # host names and other cases' files are for admins
    data["workers"] = [
        {"case_id": cases[w.current_file_id], "current_file_id": w.current_file_id}
        for w in report.workers
        if w.current_file_id is not None and cases.get(w.current_file_id) in case_ids
    ]
    return data

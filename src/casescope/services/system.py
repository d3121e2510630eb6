"""Health and metrics of a running casescope: store, DB, workers, disk, memory, queue."""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from casescope.config import Settings
from casescope.jobs.launcher import PoolFailure, pool_failure_since_work
from casescope.jobs.registry import WorkerInfo, live_workers
from casescope.model.db import Database
from casescope.model.enums import FileStatus, JobState
from casescope.model.tables import EvidenceFile, Job, Segment
from casescope.store.index import EventIndex
from casescope.workqueue import queue

MEMORY_WARN_FRACTION = 0.8


@dataclass
class SystemReport:
    ok: bool = True
    db: str = "ok"
    store: str = "ok"
    events_indexed: int = 0
    workers: list[WorkerInfo] = field(default_factory=list)
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


def collect_system(db: Database, settings: Settings, index: EventIndex | None) -> SystemReport:
    report = SystemReport(memory_limit_mb=settings.memory_limit_mb)
    try:
        with db.read() as session:
            session.execute(text("SELECT 1"))
            report.queue = {s.value: n for s, n in queue.queue_depth(session).items()}
    except SQLAlchemyError as exc:  # health must report, not raise
        report.ok, report.db = False, f"error: {exc}"
    if index is not None:
        try:
            report.events_indexed = index.count()
        except (RuntimeError, OSError) as exc:  # chDB errors are RuntimeErrors
            report.ok, report.store = False, f"error: {exc}"
    report.workers = live_workers(db, stale_after=settings.heartbeat_seconds * 3)
    if not report.workers:
        report.pool_failure = pool_failure_since_work(db)
    usage = shutil.disk_usage(settings.home_dir)
    report.disk_total_bytes, report.disk_free_bytes = usage.total, usage.free
    report.home_used_bytes = home_usage(db, settings)
    memory = psutil.virtual_memory()
    report.memory_used_mb = round((memory.total - memory.available) / 2**20, 1)
    report.memory_warning = report.memory_used_mb > MEMORY_WARN_FRACTION * settings.memory_limit_mb
    return report


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


def prometheus_text(db: Database, index: EventIndex | None) -> str:
    """The metrics in the Prometheus text exposition format."""
    lines: list[str] = []
    with db.read() as session:
        by_status = dict(
            session.execute(
                select(EvidenceFile.status, func.count()).group_by(EvidenceFile.status)
            ).all()
        )
        parsed = session.scalar(select(func.coalesce(func.sum(EvidenceFile.event_count), 0)))
        depth = queue.queue_depth(session)
        durations = session.execute(
            select(Job.started_at, Job.finished_at).where(
                Job.state == JobState.DONE,
                Job.started_at.is_not(None),
                Job.finished_at.is_not(None),
            )
        ).all()
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
    if index is not None:
        _metric(lines, "casescope_events_indexed", "gauge", "Events in the event index.")
        lines.append(f"casescope_events_indexed {index.count()}")
    _metric(lines, "casescope_queue_depth", "gauge", "Jobs by state.")
    for state in JobState:
        lines.append(f'casescope_queue_depth{{state="{state.value}"}} {depth.get(state, 0)}')
    seconds = [(end - start).total_seconds() for start, end in durations]
    _metric(lines, "casescope_job_duration_seconds", "summary", "Durations of finished jobs.")
    lines.append(f"casescope_job_duration_seconds_sum {sum(seconds):.3f}")
    lines.append(f"casescope_job_duration_seconds_count {len(seconds)}")
    hits = (with_segment or 0) - (segments or 0)
    rate = hits / with_segment if with_segment else 0.0
    _metric(lines, "casescope_segment_cache_hit_ratio", "gauge", "Files that re-used a segment.")
    lines.append(f"casescope_segment_cache_hit_ratio {rate:.4f}")
    return "\n".join(lines) + "\n"

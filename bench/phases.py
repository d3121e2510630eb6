"""Where an ingest's wall time went: its milestones read back from the home it wrote.

`timeline` prints, in seconds from the command's start: the case created (imports, settings
and the metadata DB's creation before it), the first and last intake batch registered, the
worker pool started, its template ready (the first worker forked), the first and last
pipeline step written, each index load, the compaction, and the command's end. The times
come from the audit log (UTC) and from `logs/casescope.log` (local time, milliseconds);
worker time per pipeline step is summed over files, so it can exceed the wall.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.enums import AuditAction
from casescope.model.tables import AuditRecord

#: Log lines that mark a phase, by what their message starts with.
LOG_MARKS = {
    "starting a worker pool": "pool started",
    "started worker": "template ready (first worker forked)",
    "loaded ": "index load done",
    "compacted the index": "compaction done",
}
_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \d+ \w+ [\w.]+: (.*)$")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def log_marks(home: Path) -> list[tuple[datetime, str]]:
    """(time, label) of the log lines that mark a phase; only the first pool start and
    template, every load."""
    marks: list[tuple[datetime, str]] = []
    seen: set[str] = set()
    for line in (home / "logs" / "casescope.log").read_text(errors="replace").splitlines():
        match = _LOG_LINE.match(line)
        if not match:
            continue
        for prefix, label in LOG_MARKS.items():
            if match.group(2).startswith(prefix) and (label not in seen or prefix == "loaded "):
                seen.add(label)
                at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").astimezone(UTC)
                detail = match.group(2) if prefix == "loaded " else ""
                marks.append((at, f"{label} {detail}".strip()))
    return marks


def audit_marks(db: Database) -> list[tuple[datetime, str]]:
    steps = [a for a in AuditAction if a.value.startswith("step.")]
    with db.read() as session:
        created = session.scalar(
            select(func.min(AuditRecord.at)).where(AuditRecord.action == AuditAction.CASE_CREATE)
        )
        first_batch, last_batch = session.execute(
            select(func.min(AuditRecord.at), func.max(AuditRecord.at)).where(
                AuditRecord.action == AuditAction.INTAKE_REGISTERED
            )
        ).one()
        first_step, last_step = session.execute(
            select(func.min(AuditRecord.at), func.max(AuditRecord.at)).where(
                AuditRecord.action.in_(steps)
            )
        ).one()
    labelled = [
        (created, "case created"),
        (first_batch, "first intake batch registered"),
        (last_batch, "intake ends (last batch registered)"),
        (first_step, "first pipeline step written"),
        (last_step, "last pipeline step written"),
    ]
    return [(_aware(at), label) for at, label in labelled if at is not None]


def step_times(db: Database) -> list[tuple[str, int, float]]:
    """(step, files, worker seconds summed over files), largest first."""
    steps = [a for a in AuditAction if a.value.startswith("step.")]
    with db.read() as session:
        rows = session.execute(
            select(AuditRecord.action, func.count(), func.sum(AuditRecord.duration_ms))
            .where(AuditRecord.action.in_(steps))
            .group_by(AuditRecord.action)
            .order_by(func.sum(AuditRecord.duration_ms).desc())
        ).all()
    return [(AuditAction(a).value, n, (ms or 0) / 1000) for a, n, ms in rows]


def timeline(home: Path, started: datetime, wall: float) -> None:
    """Print the ingest's milestones in `home`, in seconds from `started` (UTC)."""
    db = Database(Settings(home=home))
    marks = sorted(audit_marks(db) + log_marks(home))
    steps = step_times(db)
    db.dispose()
    print("\nwall-clock phases, s from the command's start")
    for at, label in marks:
        print(f"  {(at - started).total_seconds():7.2f}  {label}")
    print(f"  {wall:7.2f}  command returned")
    print("worker time per pipeline step (summed over files), s")
    for action, count, seconds in steps:
        print(f"  {action:<18} {count:7,} files {seconds:8.2f} s")

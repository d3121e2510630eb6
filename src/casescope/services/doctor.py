"""`casescope doctor`: prove every file is accounted for, and repair what can be repaired.

Invariants (the predecessor broke each of them):
- every file is terminal (completed/failed) or has exactly one active job;
- no running job holds an expired lease;
- every file awaiting an index load has a segment on disk;
- every file's evidence is where its row says.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, select

from casescope.config import Settings
from casescope.jobs import queue
from casescope.model.db import Database
from casescope.model.enums import ACTIVE_JOB_STATES, FileStatus, IndexState, Operation
from casescope.model.tables import EvidenceFile, Job, Segment, WorkerRecord

TERMINAL = (FileStatus.COMPLETED, FileStatus.FAILED)


@dataclass
class DoctorReport:
    orphans_requeued: list[int] = field(default_factory=list)
    leases_expired: int = 0
    stale_workers_removed: int = 0
    segments_missing: list[int] = field(default_factory=list)
    evidence_missing: list[tuple[int, str]] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not (self.orphans_requeued or self.segments_missing or self.evidence_missing)


def _orphans(session) -> list[EvidenceFile]:  # type: ignore[no-untyped-def]
    active = select(Job.file_id).where(Job.state.in_(ACTIVE_JOB_STATES))
    return list(
        session.scalars(
            select(EvidenceFile).where(
                EvidenceFile.status.not_in(TERMINAL), EvidenceFile.id.not_in(active)
            )
        )
    )


def _missing_segments(session) -> list[EvidenceFile]:  # type: ignore[no-untyped-def]
    rows = session.execute(
        select(EvidenceFile, Segment.path)
        .outerjoin(Segment, Segment.id == EvidenceFile.segment_id)
        .where(EvidenceFile.index_state == IndexState.PENDING)
    ).all()
    return [f for f, path in rows if path is None or not Path(path).is_file()]


def run_doctor(db: Database, settings: Settings, *, repair: bool) -> DoctorReport:
    report = DoctorReport()
    with db.session() as session:
        report.leases_expired = queue.expire_leases(session, time.time()) if repair else 0
        for f in _orphans(session):
            report.orphans_requeued.append(f.id)
            if repair:
                queue.enqueue(session, f, Operation.FULL, max_attempts=settings.max_attempts)
        for f in _missing_segments(session):
            report.segments_missing.append(f.id)
            if repair:
                f.index_state = IndexState.NONE
                queue.enqueue(session, f, Operation.REINDEX, max_attempts=settings.max_attempts)
        for f in session.scalars(select(EvidenceFile).where(EvidenceFile.size_bytes > 0)):
            if not Path(f.stored_path).is_file():
                report.evidence_missing.append((f.id, f.stored_path))
        if repair:
            stale = time.time() - settings.heartbeat_seconds * 6
            result = session.execute(delete(WorkerRecord).where(WorkerRecord.heartbeat_at < stale))
            report.stale_workers_removed = result.rowcount or 0
    return report

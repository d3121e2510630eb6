"""Re-index / re-run Sigma / re-hunt IOCs on one file, a selection, or a whole case."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from casescope.config import Settings
from casescope.jobs import queue
from casescope.model.db import Database
from casescope.model.enums import FileStatus, FileType, Operation
from casescope.model.tables import AuditRecord, EvidenceFile
from casescope.services.progress import FileSet


@dataclass(frozen=True)
class Requeued:
    count: int
    file_set: FileSet


def requeue_files(
    db: Database,
    settings: Settings,
    case_id: int,
    operation: Operation,
    file_ids: Sequence[int] | None = None,
    actor: str = "cli",
) -> Requeued:
    """Queue `operation` for the case's processable files (or the given ones)."""
    with db.session() as session:
        query = select(EvidenceFile).where(
            EvidenceFile.case_id == case_id,
            EvidenceFile.file_type != FileType.UNKNOWN,
            EvidenceFile.size_bytes > 0,
        )
        if file_ids:
            query = query.where(EvidenceFile.id.in_(list(file_ids)))
        files = session.scalars(query.order_by(EvidenceFile.id)).all()
        queued = [
            f.id
            for f in files
            if f.status in (FileStatus.COMPLETED, FileStatus.FAILED)
            and queue.enqueue(session, f, operation, max_attempts=settings.max_attempts)
        ]
        session.add(
            AuditRecord(
                actor=actor,
                action=f"queue.{operation.value}",
                case_id=case_id,
                events=len(queued),
                detail=f"{len(queued)} files",
            )
        )
    first, last = (min(queued), max(queued)) if queued else (0, -1)
    return Requeued(len(queued), FileSet(case_id, first, last))

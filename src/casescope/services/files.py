"""The file table of a case, and retrying its failed files."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.enums import RETRYABLE_FILE_STATES, FileStatus, IndexState, Operation
from casescope.model.tables import EvidenceFile
from casescope.services.progress import FileSet
from casescope.services.reprocess import Requeued, requeue_files


@dataclass(frozen=True)
class FileRow:
    id: int
    name: str
    file_type: str
    size_bytes: int
    status: str
    hidden: bool
    index_state: str
    events_estimated: int
    events_processed: int
    event_count: int
    error: str | None
    created_at: datetime
    completed_at: datetime | None
    sha256: str = ""
    warnings: str = ""  # what could not be read, a line each (the rest was kept)

    @property
    def shown_status(self) -> str:
        """The status as pages draw it: a completed file whose events the index owner has not
        loaded yet is not searchable yet, so it reads "indexing" (static/app.js alike)."""
        if self.status == FileStatus.COMPLETED and self.index_state == IndexState.PENDING:
            return "indexing"
        return self.status

    @property
    def percent(self) -> int:
        """Progress of this file, 0-100."""
        if FileStatus(self.status).is_terminal:
            return 100
        if not self.events_estimated:
            return 0
        return min(99, int(100 * self.events_processed / self.events_estimated))


def list_files(
    db: Database,
    case_id: int,
    *,
    status: FileStatus | None = None,
    hidden: bool | None = None,
    id_range: tuple[int, int] | None = None,
    limit: int | None = None,
) -> list[FileRow]:
    """The case's files by id (those with ids in `id_range`, inclusive, when given; the
    first `limit`)."""
    query = select(EvidenceFile).where(EvidenceFile.case_id == case_id)
    if id_range is not None:
        query = query.where(EvidenceFile.id.between(*id_range))
    if limit is not None:
        query = query.limit(limit)
    if status is not None:
        query = query.where(EvidenceFile.status == status)
    if hidden is not None:
        query = query.where(EvidenceFile.hidden == hidden)
    with db.read() as session:
        return [file_row(f) for f in session.scalars(query.order_by(EvidenceFile.id))]


def file_row(f: EvidenceFile) -> FileRow:
    """The table row of one file (read inside its session)."""
    return FileRow(
        f.id,
        f.original_path,
        f.file_type.value,
        f.size_bytes,
        f.status.value,
        f.hidden,
        f.index_state.value,
        f.events_estimated,
        f.events_processed,
        f.event_count,
        f.error,
        f.created_at,
        f.completed_at,
        f.sha256,
        f.warnings or "",
    )


def retry_failed(
    db: Database,
    settings: Settings,
    case_id: int,
    file_ids: list[int] | None = None,
    actor: str = "cli",
) -> Requeued:
    """Queue a full re-run of the case's failed and cancelled files (or those of `file_ids`)."""
    with db.read() as session:
        query = select(EvidenceFile.id).where(
            EvidenceFile.case_id == case_id, EvidenceFile.status.in_(RETRYABLE_FILE_STATES)
        )
        if file_ids:
            query = query.where(EvidenceFile.id.in_(file_ids))
        failed = list(session.scalars(query))
    if not failed:
        return Requeued(0, FileSet(case_id, 0, -1))
    return requeue_files(db, settings, case_id, Operation.FULL, failed, actor=actor)

"""Re-index / re-run Sigma / re-hunt IOCs on one file, a selection, or a whole case.

Each call is one bulk operation (services/operations.py) whose jobs are the files queued.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select

from casescope.config import Settings
from casescope.errors import CasescopeError, NotFoundError
from casescope.model.db import Database
from casescope.model.enums import AuditAction, FileType, Operation, OperationKind
from casescope.model.tables import AuditRecord, EvidenceFile
from casescope.services import operations
from casescope.services.case_lifecycle import ensure_open
from casescope.services.progress import FileSet
from casescope.workqueue import operation_jobs

#: The kind of operation a re-process is; a full run of finished files is a retry.
KINDS = {
    Operation.FULL: OperationKind.RETRY,
    Operation.REINDEX: OperationKind.REINDEX,
    Operation.SIGMA_ONLY: OperationKind.SIGMA_ONLY,
    Operation.IOC_ONLY: OperationKind.IOC_ONLY,
}


@dataclass(frozen=True)
class Requeued:
    count: int
    file_set: FileSet
    #: The bulk operation the files were queued in (None when nothing was queued).
    operation_id: int | None = None


def requeue_files(
    db: Database,
    settings: Settings,
    case_id: int,
    operation: Operation,
    file_ids: Sequence[int] | None = None,
    actor: str = "cli",
    field_map: Mapping[str, str] | None = None,
) -> Requeued:
    """Queue `operation` for the case's processable files (or the given ones). A
    `field_map` (only with `reindex`) replaces the files' map before they are parsed again:
    a wrong timestamp column is fixed without taking the evidence in again."""
    ensure_open(db, case_id)
    if field_map is not None and operation is not Operation.REINDEX:
        raise CasescopeError("a field map applies only when files are parsed again (reindex)")
    if field_map is not None:
        # the parse package (Arrow, polars) loads only for a re-index with a map: `status`
        # and `files` import this module and read the metadata DB alone
        from casescope.parse.fieldmap import check_field_map

        try:
            check_field_map(field_map)
        except ValueError as exc:
            raise CasescopeError(str(exc)) from None
    if file_ids:
        _check_file_ids(db, case_id, file_ids)
    scope = f"{len(file_ids)} selected files" if file_ids else "all files"
    if field_map is not None:
        scope += f", map {json.dumps(dict(field_map), sort_keys=True)}"
    operation_id = operations.create_operation(
        db, case_id, KINDS[operation], actor, f"{operation.value}: {scope}"
    )
    try:
        queued = _queue(db, settings, case_id, operation, file_ids, actor, operation_id, field_map)
    finally:
        operations.seal_operation(db, operation_id)
    if not queued:  # nothing to do: no empty operation clutters the jobs page
        operations.discard_if_empty(db, operation_id)
        return Requeued(0, FileSet(case_id, 0, -1))
    return Requeued(len(queued), FileSet(case_id, min(queued), max(queued)), operation_id)


def _check_file_ids(db: Database, case_id: int, file_ids: Sequence[int]) -> None:
    with db.read() as session:
        found = set(
            session.scalars(
                select(EvidenceFile.id).where(
                    EvidenceFile.case_id == case_id, EvidenceFile.id.in_(list(file_ids))
                )
            )
        )
    missing = sorted(set(file_ids) - found)
    if missing:
        ids = ", ".join(str(i) for i in missing[:20])
        raise NotFoundError(f"no file {ids} in this case")


def _queue(
    db: Database,
    settings: Settings,
    case_id: int,
    operation: Operation,
    file_ids: Sequence[int] | None,
    actor: str,
    operation_id: int,
    field_map: Mapping[str, str] | None = None,
) -> list[int]:
    stored_map = json.dumps(dict(field_map), sort_keys=True) if field_map else ""
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
            if f.status.is_terminal
            and operation_jobs.enqueue_in_operation(
                session, f, operation, operation_id, max_attempts=settings.max_attempts
            )
        ]
        if field_map is not None:  # in the enqueuing transaction: no worker sees the old map
            for f in files:
                if f.id in queued:
                    f.field_map = stored_map
        session.add(
            AuditRecord(
                actor=actor,
                action=AuditAction.queued(operation),
                case_id=case_id,
                events=len(queued),
                detail=f"{len(queued)} files (operation {operation_id})",
            )
        )
    return queued


def retry_operation(
    db: Database, settings: Settings, operation_id: int, actor: str, case_id: int | None = None
) -> Requeued:
    """Process the operation's failed (or cancelled) files again from scratch, as a new
    `retry` operation; `count` 0 and no operation when none of its files is failed."""
    op = operations.get_progress(db, operation_id, case_id)
    failed = operations.failed_files(db, operation_id)
    if not failed:
        return Requeued(0, FileSet(op.case_id, 0, -1))
    return requeue_files(db, settings, op.case_id, Operation.FULL, failed, actor=actor)

"""Evidence of a case: the file table, upload, server-side import, retry, re-processing."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Query, UploadFile
from pydantic import BaseModel, Field

from casescope.errors import CasescopeError, NotFoundError
from casescope.model.enums import FileStatus, Operation
from casescope.model.tables import Case
from casescope.model.users import Role
from casescope.services.files import list_files, retry_failed
from casescope.services.progress import FileSet, read_progress
from casescope.services.reprocess import requeue_files
from casescope.services.uploads import import_folder, ingest_uploads
from casescope.web.ids import MAX_ID, BodyId
from casescope.web.security import CaseRead, CaseWrite, State
from casescope.web.state import WebState

router = APIRouter(prefix="/api/cases/{case_id}", tags=["evidence"])


def file_dicts(state: WebState, case_id: int, status: FileStatus | None = None) -> list[dict]:
    return [
        {**asdict(row), "percent": row.percent}
        for row in list_files(state.db, case_id, status=status)
    ]


@router.get("/files")
def files(scope: CaseRead, state: State, status: FileStatus | None = None) -> list[dict]:
    return file_dicts(state, scope.case_id, status)


def _case(state: WebState, case_id: int) -> Case:
    with state.db.read() as session:
        case = session.get(Case, case_id)
    if case is None:
        raise HTTPException(404, f"no case {case_id}")
    return case


def upload_files(state: WebState, scope: CaseWrite, uploads: list[UploadFile]) -> dict:
    """Take in uploaded files (zips unpacked) and start workers; the intake report."""
    try:
        result = ingest_uploads(
            state.db,
            state.settings,
            _case(state, scope.case_id),
            [(u.file, u.filename) for u in uploads],
            actor=f"web:{scope.principal.name}",
        )
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None
    if result.report.queued:
        state.kick_workers()
    report = result.report
    return {
        "queued": report.queued,
        "duplicates": report.duplicates,
        "empty": report.empty,
        "rejected": report.rejected,
        "first_id": min(report.queued) if report.queued else None,
        "last_id": max(report.queued) if report.queued else None,
        "operation_id": report.operation_id,
    }


@router.post("/files/upload")
def upload(scope: CaseWrite, state: State, files: Annotated[list[UploadFile], File()]) -> dict:
    return upload_files(state, scope, files)


class FolderImport(BaseModel):
    path: Annotated[str, Field(min_length=1, max_length=4096)]


@router.post("/files/import")
def server_import(body: FolderImport, scope: CaseWrite, state: State) -> dict:
    """Import a folder on the server's disk (admins only)."""
    if scope.principal.role is not Role.ADMIN:
        raise HTTPException(403, "only admins may import server folders")
    try:
        report = import_folder(
            state.db,
            state.settings,
            _case(state, scope.case_id),
            Path(body.path),
            actor=f"web:{scope.principal.name}",
        )
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None
    if report.queued:
        state.kick_workers()
    return {
        "queued": report.queued,
        "duplicates": report.duplicates,
        "rejected": report.rejected,
        "operation_id": report.operation_id,
    }


class Reprocess(BaseModel):
    operation: Operation = Operation.REINDEX
    #: None or empty: every file of the case.
    file_ids: list[BodyId] | None = None
    #: With `reindex`: the files' new field map, e.g. {"ts": "EventTime"} (docs/parsing.md).
    field_map: dict[str, str] | None = None


@router.post("/files/reprocess")
def reprocess(body: Reprocess, scope: CaseWrite, state: State) -> dict:
    try:
        done = requeue_files(
            state.db,
            state.settings,
            scope.case_id,
            body.operation,
            body.file_ids,
            actor=f"web:{scope.principal.name}",
            field_map=body.field_map,
        )
    except NotFoundError:
        raise  # a 404 (web/app.py)
    except CasescopeError as exc:  # a map with an unknown column, or with another operation
        raise HTTPException(400, str(exc)) from None
    if done.count:
        state.kick_workers()
    return {
        "queued": done.count,
        "first_id": done.file_set.first_id,
        "last_id": done.file_set.last_id,
        "operation_id": done.operation_id,
    }


class Retry(BaseModel):
    file_ids: list[BodyId] | None = None


@router.post("/files/retry")
def retry(body: Retry, scope: CaseWrite, state: State) -> dict:
    done = retry_failed(
        state.db, state.settings, scope.case_id, body.file_ids, actor=f"web:{scope.principal.name}"
    )
    if done.count:
        state.kick_workers()
    return {"queued": done.count, "operation_id": done.operation_id}


@router.get("/progress")
def progress(
    scope: CaseRead,
    state: State,
    first_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    last_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 2**62,
) -> dict:
    """Progress of the case's files with ids in [first_id, last_id]."""
    p = read_progress(state.db, FileSet(scope.case_id, first_id, last_id))
    return {**asdict(p), "finished": p.finished, "searchable": p.searchable}

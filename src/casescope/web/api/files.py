"""Evidence of a case: the file table, upload, server-side import, retry, re-processing."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from casescope.errors import CasescopeError, NotFoundError
from casescope.model.enums import FileStatus, Operation
from casescope.model.tables import Case
from casescope.model.users import Role
from casescope.services.files import list_files, retry_failed
from casescope.services.progress import FileSet, read_progress
from casescope.services.reprocess import requeue_files
from casescope.services.uploads import import_folder, ingest_upload_folder, upload_folder
from casescope.web.ids import MAX_ID, BodyId
from casescope.web.security import CaseRead, CaseScope, CaseUpload, CaseWrite, State
from casescope.web.state import WebState
from casescope.web.uploads import UploadError, receive_files

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/cases/{case_id}", tags=["evidence"])
#: The upload route alone: web/app.py gives it `CASESCOPE_MAX_UPLOAD_BYTES` as body limit.
upload_router = APIRouter(prefix="/api/cases/{case_id}", tags=["evidence"])
#: The request body the upload takes (it is read by the route itself, not by FastAPI).
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                }
            }
        },
    }
}


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


def _take_in(state: WebState, scope: CaseScope, folder: Path, names: list[str]) -> dict:
    """Take in the uploads saved in `folder` and start workers; the intake report."""
    try:
        result = ingest_upload_folder(
            state.db,
            state.settings,
            _case(state, scope.case_id),
            folder,
            names,
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


@upload_router.post("/files/upload", openapi_extra=UPLOAD_BODY)
async def upload(request: Request, scope: CaseUpload, state: State) -> dict:
    """Multipart `files` (many; zips unpacked). The caller is checked before a byte of the
    body is read (cookie requests: CSRF in the `X-CSRF-Token` header); the body is written
    straight to a folder under the home's `tmp/`, removed however the request ends."""
    with upload_folder(state.settings) as folder:
        try:
            paths = await receive_files(request, folder)
        except UploadError as exc:
            raise HTTPException(400, str(exc)) from None
        except ClientDisconnect:
            logger.info("upload to case %s: the client left mid-upload", scope.case_id)
            raise HTTPException(400, "the client went away before the upload ended") from None
        names = [path.name for path in paths]
        return await run_in_threadpool(_take_in, state, scope, folder, names)


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

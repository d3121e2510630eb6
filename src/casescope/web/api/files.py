"""Evidence of a case: the file table, upload, server-side import, retry, re-processing."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from casescope.errors import CasescopeError, NotFoundError
from casescope.model.enums import FileStatus, FileType, IndexState, Operation
from casescope.model.tables import Case
from casescope.model.users import Role
from casescope.services.files import list_files, retry_failed
from casescope.services.progress import FileSet, read_progress
from casescope.services.reprocess import requeue_files
from casescope.services.uploads import import_folder, ingest_upload_folder, upload_folder
from casescope.web.api.models import IsoTime, QueuedOut
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


class FileOut(BaseModel):
    id: int
    name: str = Field(description="Where it came from (`upload:` name, or server path).")
    file_type: FileType
    size_bytes: int
    status: FileStatus
    hidden: bool
    index_state: IndexState
    events_estimated: int
    events_processed: int
    event_count: int
    error: str | None = Field(description="Why it failed.")
    created_at: IsoTime
    completed_at: IsoTime | None
    sha256: str
    warnings: str = Field(description="What could not be read, a line each (the rest was kept).")
    percent: int = Field(description="Progress, 0-100.")


class UploadOut(BaseModel):
    """What the intake did with each file."""

    queued: list[int] = Field(description="Ids of the new files, queued for processing.")
    duplicates: list[tuple[str, int]] = Field(description="(name, id of the file it repeats).")
    empty: list[int] = Field(description="Ids of empty files (kept, nothing to process).")
    rejected: list[tuple[str, str]] = Field(description="(name, reason).")
    first_id: int | None = Field(description="The lowest queued id (for `/progress`).")
    last_id: int | None
    operation_id: int | None = Field(description="The operation of the queued files.")


class ImportOut(BaseModel):
    queued: list[int]
    duplicates: list[tuple[str, int]] = Field(description="(path, id of the file it repeats).")
    rejected: list[tuple[str, str]] = Field(description="(path, reason).")
    operation_id: int | None


class ReprocessOut(BaseModel):
    queued: int = Field(description="Files queued again.")
    first_id: int
    last_id: int
    operation_id: int | None


class ProgressOut(BaseModel):
    total: int = Field(description="Files with ids in [first_id, last_id].")
    done: int = Field(description="Of those, finished (completed, failed or cancelled).")
    failed: int
    cancelled: int = Field(description="Of `done`, cancelled before they had an outcome.")
    events_estimated: int
    events_done: int
    awaiting_load: int = Field(description="Files and load pieces waiting for the index.")
    pieces_ready: int = Field(description="Of those, the load pieces.")
    finished: bool = Field(description="Every file is done.")
    searchable: bool = Field(description="Done, and every event is in the index.")


@router.get("/files", response_model=list[FileOut])
def files(scope: CaseRead, state: State, status: FileStatus | None = None) -> list[FileOut]:
    rows = list_files(state.db, scope.case_id, status=status)
    return [FileOut.model_validate(row, from_attributes=True) for row in rows]


def _case(state: WebState, case_id: int) -> Case:
    with state.db.read() as session:
        case = session.get(Case, case_id)
    if case is None:
        raise HTTPException(404, f"no case {case_id}")
    return case


def _take_in(state: WebState, scope: CaseScope, folder: Path, names: list[str]) -> UploadOut:
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
    return UploadOut(
        queued=report.queued,
        duplicates=report.duplicates,
        empty=report.empty,
        rejected=report.rejected,
        first_id=min(report.queued) if report.queued else None,
        last_id=max(report.queued) if report.queued else None,
        operation_id=report.operation_id,
    )


@upload_router.post("/files/upload", openapi_extra=UPLOAD_BODY, response_model=UploadOut)
async def upload(request: Request, scope: CaseUpload, state: State) -> UploadOut:
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


@router.post("/files/import", response_model=ImportOut)
def server_import(body: FolderImport, scope: CaseWrite, state: State) -> ImportOut:
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
    return ImportOut(
        queued=report.queued,
        duplicates=report.duplicates,
        rejected=report.rejected,
        operation_id=report.operation_id,
    )


class Reprocess(BaseModel):
    operation: Operation = Operation.REINDEX
    #: None or empty: every file of the case.
    file_ids: list[BodyId] | None = None
    #: With `reindex`: the files' new field map, e.g. {"ts": "EventTime"} (docs/parsing.md).
    field_map: dict[str, str] | None = None


@router.post("/files/reprocess", response_model=ReprocessOut)
def reprocess(body: Reprocess, scope: CaseWrite, state: State) -> ReprocessOut:
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
    return ReprocessOut(
        queued=done.count,
        first_id=done.file_set.first_id,
        last_id=done.file_set.last_id,
        operation_id=done.operation_id,
    )


class Retry(BaseModel):
    file_ids: list[BodyId] | None = None


@router.post("/files/retry", response_model=QueuedOut)
def retry(body: Retry, scope: CaseWrite, state: State) -> QueuedOut:
    done = retry_failed(
        state.db, state.settings, scope.case_id, body.file_ids, actor=f"web:{scope.principal.name}"
    )
    if done.count:
        state.kick_workers()
    return QueuedOut(queued=done.count, operation_id=done.operation_id)


@router.get("/progress", response_model=ProgressOut)
def progress(
    scope: CaseRead,
    state: State,
    first_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    last_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 2**62,
) -> ProgressOut:
    """Progress of the case's files with ids in [first_id, last_id]."""
    counts = read_progress(state.db, FileSet(scope.case_id, first_id, last_id))
    return ProgressOut.model_validate(counts, from_attributes=True)

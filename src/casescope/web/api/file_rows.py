"""Rows of the evidence table by id range: what the Evidence page fetches to show the files
an upload just registered, and to update their rows while they are processed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from casescope.services.files import list_files
from casescope.web.api.files import FileOut
from casescope.web.ids import MAX_ID
from casescope.web.security import CaseRead, State

router = APIRouter(prefix="/api/cases/{case_id}", tags=["evidence"])

#: The most rows one request returns: the page asks again from the first unfinished file.
MAX_ROWS = 500


@router.get("/files/rows", response_model=list[FileOut])
def file_rows(
    scope: CaseRead,
    state: State,
    first_id: Annotated[int, Query(ge=1, le=MAX_ID)],
    last_id: Annotated[int, Query(ge=1, le=MAX_ID)],
    limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = MAX_ROWS,
) -> list[FileOut]:
    """The case's files with ids in [first_id, last_id], by id (at most `limit`)."""
    if last_id < first_id:
        raise HTTPException(400, "last_id must not be below first_id")
    rows = list_files(state.db, scope.case_id, id_range=(first_id, last_id), limit=limit)
    return [FileOut.model_validate(row, from_attributes=True) for row in rows]

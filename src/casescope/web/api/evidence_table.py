"""The file table of a case a page at a time: `GET /api/cases/{id}/files/page`, and the
query parameters the evidence page takes too."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from casescope.model.enums import FileStatus, FileType
from casescope.services.evidence_list import (
    DEFAULT_PER_PAGE,
    MAX_NAME_FILTER,
    MAX_PER_PAGE,
    FileQuery,
    FileSort,
    SortOrder,
    file_page,
)
from casescope.web.api.files import FileOut
from casescope.web.security import CaseRead, State

router = APIRouter(prefix="/api/cases/{case_id}", tags=["evidence"])
#: Pages past this are refused (a page number is not a way to make the DB skip forever).
MAX_PAGE = 1_000_000


#: An HTML form's "any" choice sends the parameter empty: the same as leaving it out.
ANY = Literal[""]


def file_query(
    status: Annotated[
        FileStatus | ANY | None, Query(description="Only files in this status.")
    ] = None,
    name: Annotated[
        str, Query(max_length=MAX_NAME_FILTER, description="Part of the name, any case.")
    ] = "",
    file_type: Annotated[
        FileType | ANY | None, Query(alias="type", description="Only files of this format.")
    ] = None,
    sort: FileSort = FileSort.ID,
    order: SortOrder = SortOrder.ASC,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = DEFAULT_PER_PAGE,
) -> FileQuery:
    """The table's filters, order and page from the query string (an unknown status, type
    or sort column is a 422 that lists the choices)."""
    return FileQuery(status or None, name.strip(), file_type or None, sort, order, page, per_page)


FileQueryParams = Annotated[FileQuery, Depends(file_query)]


class FilePageOut(BaseModel):
    files: list[FileOut]
    total: int = Field(description="Files that match the filters (all pages).")
    page: int
    per_page: int
    pages: int = Field(description="Pages at this size (at least 1).")
    by_status: dict[FileStatus, int] = Field(description="The case's files per status.")


@router.get("/files/page", response_model=FilePageOut)
def files_page(scope: CaseRead, state: State, wanted: FileQueryParams) -> FilePageOut:
    """One page of the case's files, filtered by status, name and type, sorted by a column."""
    result = file_page(state.db, scope.case_id, wanted)
    return FilePageOut(
        files=[FileOut.model_validate(row, from_attributes=True) for row in result.rows],
        total=result.total,
        page=wanted.page,
        per_page=wanted.per_page,
        pages=result.pages,
        by_status=result.by_status,
    )

"""One page of a case's file table: filtered by status, name and type, sorted, counted.

The table of a big case (hundreds of files) is read a page at a time; the counts per status
are of the whole case, so the filter links can say how many each would show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import Select, func, select
from sqlalchemy.orm import InstrumentedAttribute

from casescope.model.db import Database
from casescope.model.enums import FileStatus, FileType
from casescope.model.tables import EvidenceFile
from casescope.services.files import FileRow, file_row

MAX_PER_PAGE = 500
DEFAULT_PER_PAGE = 50
#: One page of every file (the CLI lists them all; SQLite's LIMIT is a signed 64-bit count).
ALL_FILES = 2**62
MAX_NAME_FILTER = 200


class FileSort(StrEnum):
    """Columns the file table sorts by."""

    ID = "id"
    NAME = "name"
    TYPE = "type"
    SIZE = "size"
    STATUS = "status"
    EVENTS = "events"
    ADDED = "added"

    @property
    def column(self) -> InstrumentedAttribute:
        return _SORT_COLUMNS[self]


_SORT_COLUMNS = {
    FileSort.ID: EvidenceFile.id,
    FileSort.NAME: EvidenceFile.original_path,
    FileSort.TYPE: EvidenceFile.file_type,
    FileSort.SIZE: EvidenceFile.size_bytes,
    FileSort.STATUS: EvidenceFile.status,
    FileSort.EVENTS: EvidenceFile.event_count,
    FileSort.ADDED: EvidenceFile.created_at,
}


class SortOrder(StrEnum):
    ASC = "asc"
    DESC = "desc"


@dataclass(frozen=True)
class FileQuery:
    """Which files, in what order, which page (1-based)."""

    status: FileStatus | None = None
    name: str = ""  # part of the name, any case
    file_type: FileType | None = None
    sort: FileSort = FileSort.ID
    order: SortOrder = SortOrder.ASC
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE


@dataclass
class FilePage:
    rows: list[FileRow]
    total: int  # files that match the filters
    query: FileQuery
    by_status: dict[str, int] = field(default_factory=dict)  # the whole case's

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.query.per_page))

    @property
    def first(self) -> int:
        """The 1-based position of the page's first row (0 when empty)."""
        return (self.query.page - 1) * self.query.per_page + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1 if self.rows else 0


def _like(text: str) -> str:
    """A LIKE pattern for `text` anywhere, its own `%`, `_` and `\\` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _filtered(query: Select, case_id: int, wanted: FileQuery) -> Select:
    query = query.where(EvidenceFile.case_id == case_id)
    if wanted.status is not None:
        query = query.where(EvidenceFile.status == wanted.status)
    if wanted.file_type is not None:
        query = query.where(EvidenceFile.file_type == wanted.file_type)
    if wanted.name:
        pattern = _like(wanted.name[:MAX_NAME_FILTER].lower())
        query = query.where(func.lower(EvidenceFile.original_path).like(pattern, escape="\\"))
    return query


def file_page(db: Database, case_id: int, wanted: FileQuery) -> FilePage:
    """The page of files `wanted` asks for; a page past the end is empty (total says why)."""
    column = wanted.sort.column
    ordering = column.desc() if wanted.order is SortOrder.DESC else column.asc()
    tiebreak = EvidenceFile.id.desc() if wanted.order is SortOrder.DESC else EvidenceFile.id
    rows_query = (
        _filtered(select(EvidenceFile), case_id, wanted)
        .order_by(ordering, tiebreak)
        .limit(wanted.per_page)
        .offset((wanted.page - 1) * wanted.per_page)
    )
    with db.read() as session:
        total = (
            session.scalar(
                _filtered(select(func.count()).select_from(EvidenceFile), case_id, wanted)
            )
            or 0
        )
        rows = [file_row(f) for f in session.scalars(rows_query)]
        counts = session.execute(
            select(EvidenceFile.status, func.count())
            .where(EvidenceFile.case_id == case_id)
            .group_by(EvidenceFile.status)
        )
        by_status = {FileStatus(s).value: n for s, n in counts}
    return FilePage(rows, total, wanted, by_status)

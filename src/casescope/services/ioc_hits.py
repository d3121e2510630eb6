"""IOC hits of a case: listing (streamed), a summary per IOC, and the events they hit.

Hits are written by the workers (jobs/analyzers.IocAnalyzer) and by the index-side hunt of
new IOCs (services/ioc_index.py); adding, disabling and removing IOCs is services/iocs.py.
Filter values are only ever bound as SQL parameters.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func, select

from casescope.hunt.ioc import IocType
from casescope.model.db import Database
from casescope.model.tables import EvidenceFile, IocHit
from casescope.model.tables import Ioc as IocRow


@dataclass(frozen=True)
class HitFilter:
    """Which hits to list; every field but `case_id` is optional."""

    case_id: int
    ioc_ids: tuple[int, ...] = ()
    ioc_type: IocType | None = None
    file_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class IocSummary:
    """Hits of one IOC: how many, in how many events and files."""

    ioc_id: int
    type: IocType
    value: str
    enabled: bool
    hits: int
    events: int
    files: int


def _hit_where(filters: HitFilter) -> list:
    clauses = [IocHit.case_id == filters.case_id]
    if filters.ioc_ids:
        clauses.append(IocHit.ioc_id.in_(filters.ioc_ids))
    if filters.ioc_type is not None:
        clauses.append(IocRow.type == IocType(filters.ioc_type).value)
    if filters.file_ids:
        clauses.append(IocHit.file_id.in_(filters.file_ids))
    return clauses


#: The columns of each hit `iter_hits` yields, in order (CSV header).
HIT_COLUMNS = (
    "ts",
    "file_id",
    "seq",
    "record_id",
    "ioc_id",
    "ioc_type",
    "ioc_value",
    "field",
    "excerpt",
    "original_path",
)


def iter_hits(db: Database, filters: HitFilter, chunk: int = 5000) -> Iterator[dict[str, object]]:
    """Every matching hit with its IOC and file, in time order (streamed); keys: HIT_COLUMNS."""
    query = (
        select(
            IocHit.ts,
            IocHit.file_id,
            IocHit.seq,
            IocHit.record_id,
            IocHit.ioc_id,
            IocRow.type.label("ioc_type"),
            IocRow.value.label("ioc_value"),
            IocHit.field,
            IocHit.excerpt,
            EvidenceFile.original_path,
        )
        .join(IocRow, IocRow.id == IocHit.ioc_id)
        .join(EvidenceFile, EvidenceFile.id == IocHit.file_id)
        .where(*_hit_where(filters))
        .order_by(IocHit.ts, IocHit.file_id, IocHit.seq, IocHit.ioc_id, IocHit.field)
    )
    with db.read() as session:
        for row in session.execute(query.execution_options(yield_per=chunk)):
            yield dict(row._mapping)


def hit_summary(db: Database, filters: HitFilter) -> list[IocSummary]:
    """Per IOC with hits: hits, distinct events and files; most hits first."""
    event = func.count(func.distinct(IocHit.file_id * 4294967296 + IocHit.seq))
    query = (
        select(
            IocRow.id,
            IocRow.type,
            IocRow.value,
            IocRow.enabled,
            func.count(),
            event,
            func.count(func.distinct(IocHit.file_id)),
        )
        .select_from(IocHit)
        .join(IocRow, IocRow.id == IocHit.ioc_id)
        .where(*_hit_where(filters))
        .group_by(IocRow.id)
        .order_by(func.count().desc(), IocRow.id)
    )
    with db.read() as session:
        rows = session.execute(query).all()
    return [
        IocSummary(ioc_id, IocType(kind), value, enabled, hits, events, files)
        for ioc_id, kind, value, enabled, hits, events, files in rows
    ]


def hit_events(db: Database, filters: HitFilter) -> tuple[tuple[int, int], ...]:
    """The (file id, seq) of every event with a matching hit (for search filters)."""
    query = (
        select(IocHit.file_id, IocHit.seq)
        .join(IocRow, IocRow.id == IocHit.ioc_id)
        .where(*_hit_where(filters))
        .distinct()
    )
    with db.read() as session:
        return tuple((file_id, seq) for file_id, seq in session.execute(query))

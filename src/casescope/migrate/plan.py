"""`migrate plan`: what each phase will copy and about how long it will take.

Times are estimates from constant rates measured by bench/migrate.py (rows a second for the
metadata phases; evidence and segment bytes a second, copied and loaded, for the events
phase) on the machine of docs/benchmarks.md: a slower disk or a PostgreSQL target across a
network is slower.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from casescope.migrate.endpoints import Source
from casescope.migrate.phases import Phase, tables_of, units
from casescope.migrate.rows import count_rows
from casescope.model.enums import IndexState
from casescope.model.tables import EvidenceFile, Segment

#: Measured by `bench/migrate.py --copies 10 --rules 1000` (docs/benchmarks.md, "Migration").
ROWS_PER_SECOND = {Phase.CONFIG: 13_000.0, Phase.FINDINGS: 32_000.0}
EVENTS_BYTES_PER_SECOND = 67e6


@dataclass(frozen=True)
class PhasePlan:
    phase: Phase
    rows: int  # table rows, or for events: events to load
    files: int
    bytes: int
    seconds: float


def _rows_plan(source: Source, phase: Phase, case_ids: list[int]) -> PhasePlan:
    rows = 0
    for table in tables_of(phase):
        rows += sum(count_rows(source.engine, table, cond) for _, cond in units(table, case_ids))
    return PhasePlan(phase, rows, 0, 0, rows / ROWS_PER_SECOND[phase])


def _events_plan(source: Source, case_ids: list[int]) -> PhasePlan:
    loaded = EvidenceFile.index_state == IndexState.LOADED
    query = (
        select(
            func.count(EvidenceFile.id),
            func.coalesce(func.sum(EvidenceFile.size_bytes), 0),
            func.coalesce(func.sum(Segment.size_bytes), 0),
            func.coalesce(func.sum(Segment.event_count), 0),
        )
        .outerjoin(Segment, (Segment.id == EvidenceFile.segment_id) & loaded)
        .where(EvidenceFile.case_id.in_(case_ids))
    )
    with source.engine.connect() as connection:
        files, evidence, segments, events = connection.execute(query).one()
    size = int(evidence) + int(segments)
    seconds = size / EVENTS_BYTES_PER_SECOND
    return PhasePlan(Phase.EVENTS, int(events), int(files), size, seconds)


def plan(source: Source, phases: list[Phase], case_ids: list[int]) -> list[PhasePlan]:
    return [
        _events_plan(source, case_ids)
        if phase is Phase.EVENTS
        else _rows_plan(source, phase, case_ids)
        for phase in phases
    ]

"""Checkpoints on the target: where each (phase, table, unit) of a source stopped."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from casescope.migrate.phases import Phase
from casescope.model.db import Database
from casescope.model.migration import MigrationCheckpoint
from casescope.model.tables import utcnow

#: The events phase's checkpoints name this instead of a table.
EVIDENCE = "evidence"


@dataclass(frozen=True)
class Where:
    """One checkpoint's address."""

    source: str
    phase: Phase
    table: str
    unit: int


def checkpoint(session: Session, where: Where) -> MigrationCheckpoint:
    """The checkpoint row (created, empty, when new), in `session`'s transaction."""
    row = session.scalar(
        select(MigrationCheckpoint).where(
            MigrationCheckpoint.source == where.source,
            MigrationCheckpoint.phase == where.phase.value,
            MigrationCheckpoint.table_name == where.table,
            MigrationCheckpoint.unit == where.unit,
        )
    )
    if row is None:
        row = MigrationCheckpoint(
            source=where.source,
            phase=where.phase.value,
            table_name=where.table,
            unit=where.unit,
            rows=0,
            bytes=0,
            done=False,
            problems="",
        )
        session.add(row)
        session.flush()
    return row


def last_key(row: MigrationCheckpoint) -> object:
    return None if row.last_key is None else orjson.loads(row.last_key)


def advance(row: MigrationCheckpoint, key: object, rows: int, size: int = 0) -> None:
    row.last_key = orjson.dumps(key).decode()
    row.rows += rows
    row.bytes += size
    row.updated_at = utcnow()


def finish(db: Database, where: Where) -> None:
    with db.session() as session:
        row = checkpoint(session, where)
        row.done = True
        row.updated_at = utcnow()


def add_problems(row: MigrationCheckpoint, problems: list[dict]) -> None:
    if problems:
        known = orjson.loads(row.problems) if row.problems else []
        row.problems = orjson.dumps(known + problems).decode()


def all_checkpoints(db: Database, source: str | None = None) -> list[MigrationCheckpoint]:
    with db.read() as session:
        query = select(MigrationCheckpoint).order_by(MigrationCheckpoint.id)
        if source is not None:
            query = query.where(MigrationCheckpoint.source == source)
        return list(session.scalars(query))


def unit_done(db: Database, source: str, phase: Phase, table: str, unit: int) -> bool:
    with db.read() as session:
        return bool(
            session.scalar(
                select(MigrationCheckpoint.done).where(
                    MigrationCheckpoint.source == source,
                    MigrationCheckpoint.phase == phase.value,
                    MigrationCheckpoint.table_name == table,
                    MigrationCheckpoint.unit == unit,
                )
            )
        )


def forget_source(db: Database, source: str) -> None:
    """Delete a source's checkpoints (a finished case import: its source folder is gone)."""
    with db.session() as session:
        session.execute(delete(MigrationCheckpoint).where(MigrationCheckpoint.source == source))

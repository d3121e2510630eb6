"""The metadata phases: rows copied table by table, unit by unit, in key order, with primary
keys kept (detections, hits and marks keep pointing at the same files and events).

Each batch and its checkpoint commit in one transaction on the target, so a run killed at
any moment has copied whole batches and recorded exactly those. A row whose key the target
already holds is skipped when its content is the same (a batch copied by a run whose
checkpoint was lost with the target's last transaction cannot be) and is a conflict
otherwise: the target holds other data under that key, and the migration stops naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, Table, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from casescope.migrate.checkpoints import Where, advance, checkpoint, finish, last_key
from casescope.migrate.endpoints import MigrationError, Source
from casescope.migrate.keys import LEFT_OUT, TARGET_WINS, KeyMap
from casescope.migrate.phases import (
    Phase,
    Scope,
    canonical,
    for_target,
    key_column,
    renamed,
    tables_of,
    units,
)
from casescope.model.db import Database

logger = logging.getLogger(__name__)

#: Rows read and inserted per transaction.
DEFAULT_BATCH_ROWS = 2_000


@dataclass
class CopyContext:
    source: Source
    target: Database
    source_id: str
    case_ids: list[int]
    batch_rows: int = DEFAULT_BATCH_ROWS
    #: Told (table, rows copied) after each batch.
    on_rows: Callable[[str, int], None] | None = None
    scope: Scope = Scope.DEPLOYMENT
    #: Source case id -> its name on the target (`--as`).
    rename: dict[int, str] = field(default_factory=dict)
    #: New keys on the target (`migrate.keys`); None: keys are kept.
    keymap: KeyMap | None = None


def _existing(session: Session, table: Table, keys: list) -> dict:
    key = key_column(table)
    rows = session.execute(select(table).where(key.in_(keys))).mappings()
    return {row[key.name]: row for row in rows}


def _conflict(table: Table, key: str, value: object) -> MigrationError:
    return MigrationError(
        f"{table.name} {key}={value!r}: the target holds another row under this key "
        "(it has data of its own); migrate into an empty target, or delete that data"
    )


def _insertable_moved(
    ctx: CopyContext, keymap: KeyMap, session: Session, table: Table, rows: list
) -> list[dict]:
    """As `_insertable`, for rows under new keys: those the target has by their natural
    key are not copied, a placeholder the target has keeps its values."""
    key = key_column(table).name
    source_home, target_home = ctx.source.home, ctx.target.settings.home_dir
    mapped = []
    for row in rows:
        target_row = for_target(table, renamed(table, row, ctx.rename), source_home, target_home)
        moved = keymap.row(table, target_row, target_home)
        if moved is not None:
            mapped.append(moved)
    existing = _existing(session, table, [row[key] for row in mapped])
    fresh = []
    for row in mapped:
        there = existing.get(row[key])
        if there is None:
            fresh.append(row)
        elif table.name not in TARGET_WINS and canonical(table, there, target_home) != canonical(
            table, row, target_home
        ):
            raise _conflict(table, key, row[key])
    return fresh


def _insertable(ctx: CopyContext, session: Session, table: Table, rows: list) -> list[dict]:
    """The rows of `rows` the target lacks; MigrationError for a key it holds otherwise."""
    if ctx.keymap is not None:
        return _insertable_moved(ctx, ctx.keymap, session, table, rows)
    key = key_column(table).name
    existing = _existing(session, table, [row[key] for row in rows])
    source_home, target_home = ctx.source.home, ctx.target.settings.home_dir
    fresh = []
    for row in (renamed(table, row, ctx.rename) for row in rows):
        there = existing.get(row[key])
        if there is None:
            fresh.append(for_target(table, row, source_home, target_home))
        elif canonical(table, there, target_home) != canonical(table, row, source_home):
            raise _conflict(table, key, row[key])
    return fresh


def _copy_batch(ctx: CopyContext, table: Table, where: Where, condition: object) -> int | None:
    """Copy the next batch of one unit; the rows read (None: none were left)."""
    key = key_column(table)
    with ctx.target.session() as session:
        mark = checkpoint(session, where)
        after = last_key(mark)
        query = select(table).where(condition).order_by(key).limit(ctx.batch_rows)
        if after is not None:
            query = query.where(key > after)
        with ctx.source.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        if not rows:
            return None
        fresh = _insertable(ctx, session, table, rows)
        try:
            if fresh:
                session.execute(table.insert(), fresh)
                session.flush()
        except IntegrityError as exc:
            detail = str(exc.orig).splitlines()[0]
            raise MigrationError(f"{table.name}: the target refused rows ({detail})") from None
        advance(mark, rows[-1][key.name], len(fresh))
    return len(rows)


def copy_table(ctx: CopyContext, phase: Phase, table: Table) -> None:
    if ctx.keymap is not None and table.name in LEFT_OUT:
        return
    for unit, condition in units(table, ctx.case_ids, ctx.scope):
        where = Where(ctx.source_id, phase, table.name, unit)
        while (count := _copy_batch(ctx, table, where, condition)) is not None:
            if ctx.on_rows is not None:
                ctx.on_rows(table.name, count)
        finish(ctx.target, where)
    _advance_sequence(ctx.target, table)


def _advance_sequence(db: Database, table: Table) -> None:
    """PostgreSQL hands out keys from a sequence that explicit keys do not move: set it past
    the copied ones, or the target's next insert collides with them."""
    key = key_column(table)
    if (
        db.engine.dialect.name != "postgresql"
        or not key.autoincrement
        or key.type.python_type is not int
    ):
        return
    with db.session() as session:
        top = session.scalar(select(func.max(key)))
        if top is not None:
            session.execute(
                text("SELECT setval(pg_get_serial_sequence(:t, :c), :v)"),
                {"t": table.name, "c": key.name, "v": top},
            )


def copy_phase(ctx: CopyContext, phase: Phase) -> None:
    for table in tables_of(phase):
        logger.info("migrate %s: %s", phase.value, table.name)
        copy_table(ctx, phase, table)


def count_rows(engine: Engine, table: Table, condition: object) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(table).where(condition)) or 0

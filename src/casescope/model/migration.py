"""Progress of `casescope migrate`, kept on the target (casescope/migrate/checkpoints.py).

One row per (source, phase, table, unit): a unit is one case's rows of a table, or the rows
that belong to no case (`unit` 0). `last_key` is the primary key of the last row copied, so a
run killed in the middle continues after it; the row is written in the same transaction as
the rows it counts, so the two never disagree.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from casescope.model.tables import Base, utcnow


class MigrationCheckpoint(Base):
    __tablename__ = "migration_checkpoints"
    __table_args__ = (UniqueConstraint("source", "phase", "table_name", "unit"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Which deployment the rows came from (its database URL without a password).
    source: Mapped[str] = mapped_column(String(500))
    phase: Mapped[str] = mapped_column(String(16))  # a `casescope.migrate.phases.Phase` value
    #: A table's name, or for the events phase `evidence`.
    table_name: Mapped[str] = mapped_column(String(100))
    #: The source case's id, or 0 for rows of no case.
    unit: Mapped[int] = mapped_column(Integer)
    #: JSON of the last primary key copied (None: nothing yet).
    last_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    rows: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    done: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: What went wrong with single items (JSON list of {file_id, path, reason}).
    problems: Mapped[str] = mapped_column(Text, default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

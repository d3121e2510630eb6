"""Bulk operations: one row per ingest, upload, re-process or retry; its jobs point to it.

Progress is never stored here: it is computed from the operation's job rows and their files
(services/operations.py), so it cannot drift from the queue. The row holds what the jobs
cannot tell: who started it, whether it may still grow (an intake in progress), its state as
the analyst set it (pause, cancel), and the time it spent running, for rates and ETAs.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from casescope.model.enums import OperationKind, OperationState
from casescope.model.tables import Base, _enum, utcnow


class BulkOperation(Base):
    __tablename__ = "operations"
    __table_args__ = (Index("ix_operations_case", "case_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    kind: Mapped[OperationKind] = mapped_column(_enum(OperationKind))
    state: Mapped[OperationState] = mapped_column(
        _enum(OperationState), default=OperationState.RUNNING
    )
    created_by: Mapped[str] = mapped_column(String(100), default="system")
    detail: Mapped[str] = mapped_column(Text, default="")
    #: False while an intake may still add files; the operation cannot complete before.
    sealed: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Jobs in the operation, fixed when it is sealed.
    files_total: Mapped[int] = mapped_column(Integer, default=0)
    #: Bumped on every change of state (seal, pause, resume, cancel, completion); part of the
    #: ids of its Server-Sent Events, which must only increase.
    revision: Mapped[int] = mapped_column(Integer, default=0)
    #: Running time before `running_since` (pauses excluded), in seconds.
    active_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    #: Epoch seconds when it last started or resumed running; None while paused or finished.
    running_since: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

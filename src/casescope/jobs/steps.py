"""Step bookkeeping for `process_file`: status transitions and one audit row per step.

Per-file overhead matters at 10,000+ small files, so a file's audit rows are collected in
memory and written in the transaction that completes (or fails) it, and each status change
rides on a write the pipeline makes anyway (`advance`). A long step still shows live: its
status is committed before the step's work starts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from casescope.model.db import Database
from casescope.model.enums import AuditAction, FileStatus
from casescope.model.tables import AuditRecord, EvidenceFile, utcnow

logger = logging.getLogger(__name__)

_INSERT_AUDIT = insert(AuditRecord.__table__)  # Core: no ORM bulk-insert overhead per file


@dataclass
class StepResult:
    """What a step reports into its audit row."""

    events: int = 0
    details: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StepScope:
    """Identifies the file and job a step's audit row belongs to."""

    case_id: int
    file_id: int
    job_id: int
    actor: str


def advance(session: Session, file_id: int, status: FileStatus, **values: object) -> None:
    """Move a file to `status` (and set other columns) inside the caller's transaction."""
    session.execute(
        update(EvidenceFile).where(EvidenceFile.id == file_id).values(status=status, **values)
    )


class StepLog:
    """Times each step and keeps its audit row until `flush`."""

    def __init__(self, scope: StepScope) -> None:
        self.scope = scope
        self._rows: list[dict[str, object]] = []

    def _record(
        self, status: FileStatus, result: StepResult, ok: bool, started: float, shared_ms: float
    ) -> None:
        elapsed = (time.perf_counter() - started) * 1000 + shared_ms
        self._rows.append(
            dict(
                actor=self.scope.actor,
                action=AuditAction.step(status),
                case_id=self.scope.case_id,
                file_id=self.scope.file_id,
                job_id=self.scope.job_id,
                ok=ok,
                duration_ms=elapsed,
                events=result.events,
                detail="; ".join(result.details),
            )
        )
        logger.debug(
            "case %d file %d job %d: %s %s in %.1f ms (%d events)",
            self.scope.case_id,
            self.scope.file_id,
            self.scope.job_id,
            status.value,
            "done" if ok else "failed",
            elapsed,
            result.events,
        )

    @contextmanager
    def step(self, status: FileStatus, shared_ms: float = 0.0) -> Iterator[StepResult]:
        """Time a step; `shared_ms` adds this file's share of work done for a group."""
        result = StepResult()
        started = time.perf_counter()
        try:
            yield result
        except BaseException as exc:
            result.details.append(f"{type(exc).__name__}: {exc}")
            self._record(status, result, False, started, shared_ms)
            raise
        self._record(status, result, True, started, shared_ms)

    def checkpoint(self) -> int:
        """A mark to `rewind` to (steps recorded in a transaction that was rolled back)."""
        return len(self._rows)

    def rewind(self, mark: int) -> None:
        del self._rows[mark:]

    def flush(self, session: Session) -> None:
        """Add the rows to `session`; they are kept until `flush_alone` or the next flush, so
        a rolled-back completion can still write them on the failure path."""
        flush_logs(session, [self])

    @contextmanager
    def flushed_on_error(self, db: Database) -> Iterator[None]:
        """Write the rows alone if the block raises (then re-raise)."""
        try:
            yield
        except BaseException:
            self.flush_alone(db)
            raise

    def flush_alone(self, db: Database) -> None:
        """Write the rows in their own transaction (the failure path)."""
        if self._rows:
            with db.session() as session:
                session.add_all(AuditRecord(**row) for row in self._rows)
            self._rows = []


def flush_logs(session: Session, logs: Sequence[StepLog]) -> None:
    """`StepLog.flush` of several logs in one INSERT."""
    at = utcnow()
    rows = [{"at": at, **row} for log in logs for row in log._rows]
    if rows:
        session.execute(_INSERT_AUDIT, rows)

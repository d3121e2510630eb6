"""Step bookkeeping for `process_file`: status transitions and one audit row per step."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import update

from casescope.model.db import Database
from casescope.model.enums import FileStatus
from casescope.model.tables import AuditRecord, EvidenceFile

logger = logging.getLogger(__name__)


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


def set_status(db: Database, file_id: int, status: FileStatus) -> None:
    with db.session() as session:
        session.execute(
            update(EvidenceFile).where(EvidenceFile.id == file_id).values(status=status)
        )


def audit(db: Database, scope: StepScope, action: str, result: StepResult, **kw: object) -> None:
    with db.session() as session:
        session.add(
            AuditRecord(
                actor=scope.actor,
                action=action,
                case_id=scope.case_id,
                file_id=scope.file_id,
                job_id=scope.job_id,
                events=result.events,
                detail="; ".join(result.details),
                **kw,
            )
        )


@contextmanager
def step(db: Database, scope: StepScope, status: FileStatus) -> Iterator[StepResult]:
    """Enter `status`, run the block, and audit it (timing, counts, success or the error)."""
    set_status(db, scope.file_id, status)
    result = StepResult()
    started = time.perf_counter()
    try:
        yield result
    except BaseException as exc:
        result.details.append(f"{type(exc).__name__}: {exc}")
        elapsed = (time.perf_counter() - started) * 1000
        audit(db, scope, status.value, result, ok=False, duration_ms=elapsed)
        raise
    elapsed = (time.perf_counter() - started) * 1000
    audit(db, scope, status.value, result, ok=True, duration_ms=elapsed)
    logger.debug(
        "case %d file %d job %d: %s done in %.1f ms (%d events)",
        scope.case_id,
        scope.file_id,
        scope.job_id,
        status.value,
        elapsed,
        result.events,
    )

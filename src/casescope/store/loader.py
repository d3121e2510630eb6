"""The index owner's loader: moves ready segments into the event index in large batches.

Workers finish a file by marking it `index_state = pending` (with a new `index_generation`).
The owner picks pending files in batches of many files (one INSERT per batch, never one per
file), first deleting any rows the index already holds for them — left by a reindex, or by an
owner that died between its INSERT and its bookkeeping — so a file's rows exist exactly once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.enums import IndexState
from casescope.model.tables import EvidenceFile, Segment
from casescope.store.index import EventIndex, LoadItem

logger = logging.getLogger(__name__)

MAX_PENDING_PER_CALL = 20_000


@dataclass(frozen=True)
class PendingFile:
    file_id: int
    case_id: int
    generation: int
    segment_path: Path
    event_count: int


@dataclass
class LoadReport:
    files: int = 0
    rows: int = 0
    batches: int = 0
    seconds: float = 0.0


def _pending_files(db: Database, limit: int) -> list[PendingFile]:
    with db.read() as session:
        rows = session.execute(
            select(
                EvidenceFile.id,
                EvidenceFile.case_id,
                EvidenceFile.index_generation,
                Segment.path,
                Segment.event_count,
            )
            .join(Segment, Segment.id == EvidenceFile.segment_id)
            .where(EvidenceFile.index_state == IndexState.PENDING)
            .order_by(EvidenceFile.id)
            .limit(limit)
        ).all()
    return [PendingFile(r[0], r[1], r[2], Path(r[3]), r[4]) for r in rows]


def _take_batch(pending: list[PendingFile], settings: Settings) -> list[PendingFile]:
    """Up to the file and row limits, never the same segment twice in one INSERT."""
    batch: list[PendingFile] = []
    seen: set[Path] = set()
    rows = 0
    for item in pending:
        if item.segment_path in seen:
            continue
        if batch and rows + item.event_count > settings.load_batch_rows:
            break
        batch.append(item)
        seen.add(item.segment_path)
        rows += item.event_count
        if len(batch) >= settings.load_batch_files:
            break
    return batch


def _mark_loaded(db: Database, batch: list[PendingFile]) -> None:
    with db.session() as session:
        for item in batch:
            session.execute(
                update(EvidenceFile)
                .where(
                    EvidenceFile.id == item.file_id,
                    EvidenceFile.index_generation == item.generation,
                    EvidenceFile.index_state == IndexState.PENDING,
                )
                .values(index_state=IndexState.LOADED)
            )


def load_batch(db: Database, index: EventIndex, batch: list[PendingFile]) -> int:
    """Load one batch; returns rows inserted."""
    present = index.files_present([item.file_id for item in batch])
    if present:
        logger.info("replacing index rows of %d files", len(present))
        index.delete_files(sorted(present))
    items = [
        LoadItem(item.case_id, item.file_id, item.segment_path)
        for item in batch
        if item.event_count > 0
    ]
    index.load(items)
    _mark_loaded(db, batch)
    return sum(item.event_count for item in batch)


def load_pending(db: Database, index: EventIndex, settings: Settings) -> LoadReport:
    """Load the segments pending now (not those that finish meanwhile: they wait for the
    next call, so a busy ingest makes few large INSERTs rather than many small ones)."""
    report = LoadReport()
    started = time.perf_counter()
    pending = _pending_files(db, MAX_PENDING_PER_CALL)
    while pending:
        batch = _take_batch(pending, settings)
        taken = {item.file_id for item in batch}
        pending = [item for item in pending if item.file_id not in taken]
        report.rows += load_batch(db, index, batch)
        report.files += len(batch)
        report.batches += 1
    report.seconds = time.perf_counter() - started
    if report.files:
        logger.info(
            "loaded %d files (%d rows) in %d batches, %.2f s",
            report.files,
            report.rows,
            report.batches,
            report.seconds,
        )
    return report

"""Re-doing one case on the target: its rows, index rows and files deleted, its checkpoints
forgotten, so that `run --cases NAME` copies it again. Nothing of another case is touched:
rows are selected by the case's own units (`phases.units`), and a segment or evidence file
is deleted only when no file of another case still points at it.

`forget_case` is the one entry point. It is not `services.case_delete`: a deleted case
leaves a `case_deletions` record that keeps its id from ever being used again, while a
re-done case must come back under the same id (keys are kept across a migration).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from sqlalchemy import delete, select

from casescope.migrate.phases import NO_CASE, Phase, tables_of, units
from casescope.model.db import Database
from casescope.model.migration import MigrationCheckpoint
from casescope.model.tables import EvidenceFile, Segment
from casescope.store.owner import open_index

logger = logging.getLogger(__name__)


def _case_files(db: Database, case_id: int) -> list[tuple[int, str, int | None]]:
    with db.read() as session:
        rows = session.execute(
            select(EvidenceFile.id, EvidenceFile.stored_path, EvidenceFile.segment_id).where(
                EvidenceFile.case_id == case_id
            )
        ).all()
    return [(row[0], row[1], row[2]) for row in rows]


def _delete_rows(db: Database, source: str, case_id: int) -> list[str]:
    """The case's rows in every copied table, children first; the segment paths no other
    case uses (their rows deleted too)."""
    tables = [t for phase in (Phase.FINDINGS, Phase.CONFIG) for t in reversed(tables_of(phase))]
    with db.session() as session:
        used = select(EvidenceFile.segment_id).where(EvidenceFile.case_id == case_id)
        segments = dict(
            session.execute(select(Segment.id, Segment.path).where(Segment.id.in_(used))).all()
        )
        for table in tables:
            if table.name == "segments":
                continue
            for unit, condition in units(table, [case_id]):
                if unit != NO_CASE:
                    session.execute(delete(table).where(condition))
        still = set(
            session.scalars(
                select(EvidenceFile.segment_id).where(EvidenceFile.segment_id.in_(segments))
            )
        )
        gone = [segment_id for segment_id in segments if segment_id not in still]
        session.execute(delete(Segment).where(Segment.id.in_(gone)))
        session.execute(
            delete(MigrationCheckpoint).where(
                MigrationCheckpoint.source == source, MigrationCheckpoint.unit == case_id
            )
        )
    return [segments[segment_id] for segment_id in gone]


def _unlink(path: Path) -> None:
    """A file, or a segment written in pieces (a folder)."""
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def forget_case(db: Database, source: str, case_id: int) -> None:
    """Delete what the target holds of one migrated case (see the module doc)."""
    files = _case_files(db, case_id)
    with open_index(db.settings, "migrate redo") as index:
        index.delete_files([file_id for file_id, _, _ in files])
    segment_paths = _delete_rows(db, source, case_id)
    with db.read() as session:
        kept = set(session.scalars(select(EvidenceFile.stored_path)))
    for _, stored, _ in files:
        if stored not in kept:
            _unlink(Path(stored))
    for path in segment_paths:
        _unlink(Path(path))
    logger.info("forgot case %d: %d files", case_id, len(files))

"""Completing a group's files in a few statements (`pipeline.complete_files`).

Each file must end as `complete_file` leaves it alone: completed, pending for the index,
with its event count and its segment row (one row per content, as the content address
says), a segment written again replacing the known row's path and counts.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from casescope.config import Settings
from casescope.jobs.context import file_infos
from casescope.jobs.pipeline import Outcome, complete_files
from casescope.model.db import Database
from casescope.model.enums import FileStatus, IndexState, Operation
from casescope.model.tables import EvidenceFile, Segment
from casescope.parse.schema import PARSER_VERSION
from casescope.store.segments import segment_path
from tests.integration.conftest import add_files


def _segment(settings: Settings, sha256: str, size: int) -> Path:
    path = segment_path(settings.segments_dir, sha256, PARSER_VERSION)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    return path


def test_group_completion_records_one_segment_per_content(db: Database, settings: Settings) -> None:
    first, known = add_files(db, 2, case_name="a")
    (same_bytes,) = add_files(db, 1, case_name="b")  # file0's bytes, in another case
    empty, not_indexed = add_files(db, 4, case_name="c")[2:]
    with db.session() as session:
        rows = {f.id: f for f in session.scalars(select(EvidenceFile))}
        session.add(
            Segment(
                sha256=rows[known].sha256, parser_version=PARSER_VERSION, path="/old", event_count=1
            )
        )
    ids = [first, known, same_bytes, empty, not_indexed]
    with db.read() as session:
        infos = file_infos(session, ids, dict.fromkeys(ids, Operation.FULL))
    outcomes = {
        first: Outcome(new_segment=_segment(settings, rows[first].sha256, 10), event_count=5),
        known: Outcome(new_segment=_segment(settings, rows[known].sha256, 20), event_count=7),
        empty: Outcome(new_segment=_segment(settings, rows[empty].sha256, 30), event_count=0),
        not_indexed: Outcome(),  # an analyzer-only job: no segment, no counts
    }
    outcomes[same_bytes] = Outcome(new_segment=outcomes[first].new_segment, event_count=5)

    with db.session() as session:
        complete_files(session, [(infos[i], outcomes[i]) for i in ids])

    with db.read() as session:
        files = {f.id: f for f in session.scalars(select(EvidenceFile))}
        segments = {s.id: s for s in session.scalars(select(Segment))}
    assert len(segments) == 3
    assert files[first].segment_id == files[same_bytes].segment_id
    assert {files[i].segment_id for i in (first, known, empty)} == set(segments)
    old = segments[files[known].segment_id]
    assert (old.path, old.event_count, old.size_bytes) == (str(outcomes[known].new_segment), 7, 20)
    for file_id in ids:
        assert files[file_id].status == FileStatus.COMPLETED
        assert files[file_id].completed_at is not None
        assert outcomes[file_id].segment_id == files[file_id].segment_id
    for file_id, events in ((first, 5), (known, 7), (same_bytes, 5), (empty, 0)):
        assert files[file_id].event_count == events
        assert files[file_id].index_state == IndexState.PENDING
        assert files[file_id].hidden == (events == 0)
    assert files[not_indexed].segment_id is None

"""Wide events reach the index within the owner's memory budget, and a file (or a load piece)
whose events cannot be loaded is taken out of the load alone: the loader never raises for one
file's sake (store/loader.py, store/load_failures.py, docs/decisions.md "Wide events")."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import select, update

from casescope.config import Settings
from casescope.jobs.context import WorkerContext
from casescope.model.db import Database
from casescope.model.enums import FileStatus, IndexState, JobState
from casescope.model.tables import EvidenceFile, Job, LoadPiece, Segment
from casescope.parse.schema import EVENT_SCHEMA
from casescope.store.index import ChdbIndex, LoadItem
from casescope.store.loader import LOAD_INSERT_BYTES, load_pending
from casescope.store.segments import SegmentWriter, insert_slices, segment_path
from tests.integration.conftest import add_files
from tests.integration.test_loader import make_batch, mark_ready
from tests.integration.test_pieces import (
    PIECE,
    OwnerDuringParse,
    _fingerprint,
    _ingest,
    _run_job,
    _write_ndjson,
)

MB = 10**6


def wide_batch(events: int, chars: int, first_seq: int = 0) -> pa.RecordBatch:
    """`events` events whose raw record and one field each hold `chars` characters of hex
    (one token each: the worst case for the index)."""
    blobs = [os.urandom(chars // 2).hex() for _ in range(events)]
    return pa.RecordBatch.from_pydict(
        {
            "seq": pa.array(range(first_seq, first_seq + events), pa.uint64()),
            "ts": pa.array([1_600_000_000_000_000] * events, pa.timestamp("us", "UTC")),
            "event_id": pa.array([1] * events, pa.uint32()),
            "channel": [""] * events,
            "provider": [""] * events,
            "computer": ["PC1"] * events,
            "record_id": pa.array([None] * events, pa.uint64()),
            "level": pa.array([None] * events, pa.uint8()),
            "user_name": [""] * events,
            "user_sid": [""] * events,
            "fields": pa.array([[("Blob", b)] for b in blobs], EVENT_SCHEMA.field("fields").type),
            "raw": blobs,
        },
        schema=EVENT_SCHEMA,
    )


def _pending(settings: Settings, db: Database, file_id: int, sha: str, batches: list) -> Path:
    """The file's segment (one row group per batch), pending, its job done, its evidence as
    large as its events."""
    with SegmentWriter(segment_path(settings.segments_dir, sha, 1), settings.tmp_dir) as writer:
        for batch in batches:
            writer.write(batch)
        path = writer.commit()
    mark_ready(db, file_id, path, sum(b.num_rows for b in batches))
    with db.session() as session:
        session.execute(update(Job).where(Job.file_id == file_id).values(state=JobState.DONE))
        session.execute(
            update(EvidenceFile)
            .where(EvidenceFile.id == file_id)
            .values(size_bytes=sum(b.nbytes for b in batches))
        )
    return path


@pytest.fixture
def tight(settings: Settings) -> Settings:
    return settings.model_copy(update={"index_memory_mb": 300})  # the least allowed


@pytest.fixture
def index(tight: Settings) -> Iterator[ChdbIndex]:
    idx = ChdbIndex(tight.index_dir, memory_mb=tight.index_memory_mb)
    yield idx
    idx.close()


@pytest.mark.fresh_process
def test_wide_events_load_in_inserts_of_bounded_bytes(
    tight: Settings, db: Database, index: ChdbIndex
) -> None:
    """48 events of 2 MB (raw and fields), in row groups of 8 as the parser cuts them: one
    INSERT of them all needed more than 300 MB; inserts of LOAD_INSERT_BYTES do not."""
    wide, small = add_files(db, 2)
    path = _pending(tight, db, wide, "a" * 64, [wide_batch(8, MB, 8 * n) for n in range(6)])
    _pending(tight, db, small, "b" * 64, [make_batch(10, "small")])
    slices = insert_slices(path, 48, LOAD_INSERT_BYTES)
    assert slices == [(0, 16), (16, 32), (32, 48)]  # 16 events of 2 MB: 32 MiB
    report = load_pending(db, index, tight)
    assert (report.files, report.rows, report.failed) == (2, 58, 0)
    assert index.counts_by_file(1) == {wide: 48, small: 10}
    with db.read() as session:
        states = session.scalars(select(EvidenceFile.index_state)).all()
    assert set(states) == {IndexState.LOADED}


def test_a_file_over_the_budget_fails_alone(
    tight: Settings, db: Database, index: ChdbIndex
) -> None:
    """One event of 80 MB cannot be inserted within 300 MB: its file fails with the reason,
    the file beside it in the batch loads, and the next load has nothing to raise about."""
    huge, small = add_files(db, 2)
    _pending(tight, db, huge, "c" * 64, [wide_batch(1, 40 * MB)])
    _pending(tight, db, small, "d" * 64, [make_batch(10, "small")])
    report = load_pending(db, index, tight)
    assert (report.files, report.failed) == (1, 1)
    assert index.counts_by_file(1) == {small: 10}
    with db.read() as session:
        failed = session.get(EvidenceFile, huge)
        job = session.scalars(select(Job).where(Job.file_id == huge)).one()
        assert session.get(EvidenceFile, small).index_state is IndexState.LOADED
    assert failed.status is FileStatus.FAILED and failed.index_state is IndexState.NONE
    assert "CASESCOPE_INDEX_MEMORY_MB=300" in failed.error
    assert f"casescope reindex --case case --file {huge}" in failed.error
    assert job.state is JobState.FAILED and job.last_error == failed.error  # `jobs retry`
    assert load_pending(db, index, tight).files == 0  # nothing left to fail on


def test_a_damaged_segment_fails_its_file_alone(
    settings: Settings, db: Database, index: ChdbIndex
) -> None:
    damaged, good = add_files(db, 2)
    path = _pending(settings, db, damaged, "e" * 64, [make_batch(10, "damaged")])
    _pending(settings, db, good, "f" * 64, [make_batch(10, "good")])
    path.write_bytes(path.read_bytes()[:100])
    report = load_pending(db, index, settings)
    assert (report.files, report.failed) == (1, 1)
    assert index.counts_by_file(1) == {good: 10}
    with db.read() as session:
        error = session.get(EvidenceFile, damaged).error
    assert error.startswith("its events could not be loaded into the event index (")


class FailsOnce:
    """The index, but the first INSERT of piece `piece` fails as if for memory."""

    def __init__(self, index: ChdbIndex, seq_from: int) -> None:
        self._index = index
        self._seq_from = seq_from
        self.failed = False

    def load(self, items: list[LoadItem]) -> None:
        if not self.failed and items[0].seq_from == self._seq_from:
            self.failed = True
            raise RuntimeError("Code: 241. DB::Exception: (MEMORY_LIMIT_EXCEEDED)")
        self._index.load(items)

    def __getattr__(self, name: str) -> object:
        return getattr(self._index, name)


def test_a_piece_that_cannot_be_loaded_is_withdrawn(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    """Its file's pieces and rows are withdrawn, the later pieces load, and the completed
    file is loaded whole: each event once."""
    pieced = settings.model_copy(update={"load_piece_events": PIECE, "batch_size": 250})
    file_id = _ingest(db, pieced, _write_ndjson(tmp_path / "big.jsonl", 5 * PIECE, "a"))
    real = ChdbIndex(pieced.index_dir)
    try:
        flaky = FailsOnce(real, seq_from=PIECE)  # the second piece's first INSERT
        owner = OwnerDuringParse(db, flaky, pieced, file_id)  # type: ignore[arg-type]
        _run_job(WorkerContext(settings=pieced, db=db, worker_id="w"), [owner])
        assert flaky.failed
        report = load_pending(db, real, pieced)  # the completed file, loaded whole
        assert report.failed == 0
        with db.read() as session:
            assert session.get(EvidenceFile, file_id).index_state is IndexState.LOADED
            assert not session.scalars(select(LoadPiece)).all()
            assert session.scalars(select(Segment)).one().event_count == 5 * PIECE
        assert _fingerprint(real, file_id)["n"] == _fingerprint(real, file_id)["seqs"] == 5 * PIECE
    finally:
        real.close()

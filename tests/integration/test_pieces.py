"""Large files load in pieces while they are parsed (store/pieces.py): real parse, real
SQLite, real chDB; every event in the index exactly once, whatever happens to the attempt."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import func, select

from casescope.config import Settings
from casescope.evidence.intake import ingest_paths
from casescope.jobs.context import WorkerContext
from casescope.jobs.pipeline import process_file
from casescope.model.db import Database
from casescope.model.enums import FileStatus, IndexState, JobState, Operation
from casescope.model.tables import EvidenceFile, Job, LoadPiece
from casescope.services.cases import create_case
from casescope.services.progress import FileSet, read_progress
from casescope.store.index import ChdbIndex
from casescope.store.load_queue import load_waiting, publish_piece
from casescope.store.loader import load_pending
from casescope.store.pieces import PIECE_INSERT_BYTES, ReadyPiece, piece_insert_rows
from casescope.store.segments import segment_files
from casescope.workqueue import queue

LINES = 5_000
PIECE = 1_000


def _write_ndjson(path: Path, lines: int, tag: str) -> Path:
    with path.open("w") as out:
        for n in range(lines):
            out.write(
                f'{{"@timestamp": "2024-03-01T10:{n // 600 % 60:02d}:{n // 10 % 60:02d}Z", '
                f'"host": {{"name": "ws-{n % 7}"}}, "tag": "{tag}", "n": {n}}}\n'
            )
    return path


@pytest.fixture
def pieced(settings: Settings) -> Settings:
    """Pieces of PIECE events, written in parse batches of 250."""
    return settings.model_copy(update={"load_piece_events": PIECE, "batch_size": 250})


@pytest.fixture
def index(settings: Settings) -> Iterator[ChdbIndex]:
    idx = ChdbIndex(settings.index_dir)
    yield idx
    idx.close()


@dataclass
class OwnerDuringParse:
    """A consumer of the parse that acts as the index owner after every batch: it loads
    what is ready and records how many of the file's events the index holds meanwhile."""

    db: Database
    index: ChdbIndex
    settings: Settings
    file_id: int
    seen: list[int] = field(default_factory=list)
    status = None  # never persisted
    wants_events = True

    def consume(self, batch: pa.RecordBatch) -> None:
        load_pending(self.db, self.index, self.settings)
        self.seen.append(_rows(self.index, self.file_id))

    def pieces_loaded(self) -> int:
        with self.db.read() as session:
            query = select(func.count()).where(LoadPiece.file_id == self.file_id, LoadPiece.loaded)
            return int(session.scalar(query) or 0)

    def finish(self) -> None:
        pass


class WorkerDies(Exception):
    """Raised in the middle of a parse, as if the worker died there."""


class DiesAfterTwoPieces(OwnerDuringParse):
    """The owner loads the first two pieces; then the parse fails."""

    def consume(self, batch: pa.RecordBatch) -> None:
        super().consume(batch)
        if self.pieces_loaded() == 2:
            raise WorkerDies


def _reindex_dying(db: Database, index: ChdbIndex, settings: Settings, file_id: int) -> int:
    """Queue a re-index of the file and run its first attempt until it dies after two
    pieces were loaded; the job's id."""
    with db.session() as session:
        f = session.get(EvidenceFile, file_id)
        queue.enqueue(session, f, Operation.REINDEX, max_attempts=settings.max_attempts)
    job = queue.claim(db, "dying", settings.lease_seconds)
    assert job is not None
    dying = WorkerContext(settings=settings, db=db, worker_id="dying")
    with pytest.raises(WorkerDies):
        process_file(dying, job, [DiesAfterTwoPieces(db, index, settings, file_id)])
    assert _rows(index, file_id) == 2 * PIECE  # the old rows gave way to the first pieces
    return job.id


def _ingest(db: Database, settings: Settings, path: Path, case: str = "c") -> int:
    report = ingest_paths(db, settings, create_case(db, case), [path])
    return report.queued[0]


def _run_job(ctx: WorkerContext, analyzers: list | None = None) -> queue.ClaimedJob:
    job = queue.claim(ctx.db, ctx.worker_id, ctx.settings.lease_seconds)
    assert job is not None
    assert process_file(ctx, job, analyzers or [])
    return job


def _rows(index: ChdbIndex, file_id: int) -> int:
    sql = "SELECT count() FROM casescope.events WHERE file_id = {f:UInt64}"
    return int(index.scalar(sql, {"f": file_id}))


def _fingerprint(index: ChdbIndex, file_id: int) -> dict:
    return index.query_rows(
        "SELECT count() AS n, uniqExact(seq) AS seqs, "
        "groupBitXor(cityHash64(seq, ts, computer, raw, toString(fields))) AS h "
        "FROM casescope.events WHERE file_id = {f:UInt64}",
        {"f": file_id},
    )[0]


def test_pieces_load_during_the_parse_and_once(
    pieced: Settings, db: Database, index: ChdbIndex, tmp_path: Path
) -> None:
    file_id = _ingest(db, pieced, _write_ndjson(tmp_path / "big.jsonl", LINES, "a"))
    owner = OwnerDuringParse(db, index, pieced, file_id)
    _run_job(WorkerContext(settings=pieced, db=db, worker_id="w"), [owner])

    # while the worker was still parsing, the index held its first pieces, in whole pieces
    assert max(owner.seen) >= LINES - PIECE
    assert all(n % PIECE == 0 for n in owner.seen)
    assert owner.seen == sorted(owner.seen)
    load_pending(db, index, pieced)
    with db.read() as session:
        f = session.get(EvidenceFile, file_id)
        assert f.index_state is IndexState.LOADED and f.event_count == LINES
        assert session.scalar(select(func.count()).select_from(LoadPiece)) == 0
        segment = Path(f.segment.path)
    assert segment.is_dir() and len(segment_files(segment)) == LINES // PIECE
    rows = _fingerprint(index, file_id)
    assert rows["n"] == rows["seqs"] == LINES


@dataclass
class ProgressDuringParse(OwnerDuringParse):
    """Reads the intake's progress after every batch, loading nothing."""

    ready: list[int] = field(default_factory=list)
    waiting: list[bool] = field(default_factory=list)  # what `load_waiting` said

    def consume(self, batch: pa.RecordBatch) -> None:
        progress = read_progress(self.db, FileSet(1, self.file_id, self.file_id))
        self.ready.append(progress.pieces_ready)
        self.waiting.append(load_waiting(self.db))


def test_progress_counts_the_pieces_ready_to_load(
    pieced: Settings, db: Database, index: ChdbIndex, tmp_path: Path
) -> None:
    """`ingest` loads as soon as a piece is ready (`cli.follow.load_due`): the progress it
    reads counts them, and none once they are loaded."""
    file_id = _ingest(db, pieced, _write_ndjson(tmp_path / "big.jsonl", LINES, "a"))
    watcher = ProgressDuringParse(db, index, pieced, file_id)
    _run_job(WorkerContext(settings=pieced, db=db, worker_id="w"), [watcher])
    assert watcher.ready[0] == 0 and max(watcher.ready) >= LINES // PIECE - 1
    assert watcher.waiting == [n > 0 for n in watcher.ready]  # a ready piece is work
    load_pending(db, index, pieced)
    progress = read_progress(db, FileSet(1, file_id, file_id))
    assert progress.pieces_ready == 0 and progress.awaiting_load == 0 and progress.searchable


def test_pieced_and_whole_segments_index_the_same_rows(
    settings: Settings, pieced: Settings, db: Database, index: ChdbIndex, tmp_path: Path
) -> None:
    """Differential: the same events whether loaded from one segment or in pieces (a
    re-index of the same file, parsed again)."""
    file_id = _ingest(db, settings, _write_ndjson(tmp_path / "big.jsonl", LINES, "same"))
    _run_job(WorkerContext(settings=settings, db=db, worker_id="w"))
    load_pending(db, index, settings)
    whole = _fingerprint(index, file_id)
    with db.session() as session:
        f = session.get(EvidenceFile, file_id)
        assert Path(f.segment.path).is_file()
        queue.enqueue(session, f, Operation.REINDEX, max_attempts=3)
    owner = OwnerDuringParse(db, index, pieced, file_id)
    _run_job(WorkerContext(settings=pieced, db=db, worker_id="w"), [owner])
    load_pending(db, index, pieced)
    assert PIECE in owner.seen  # the re-index did load in pieces
    assert _fingerprint(index, file_id) == whole
    assert whole["n"] == whole["seqs"] == LINES


def test_reindex_and_a_retried_attempt_replace_rows(
    pieced: Settings, db: Database, index: ChdbIndex, tmp_path: Path
) -> None:
    file_id = _ingest(db, pieced, _write_ndjson(tmp_path / "big.jsonl", LINES, "r"))
    ctx = WorkerContext(settings=pieced, db=db, worker_id="w")
    _run_job(ctx, [OwnerDuringParse(db, index, pieced, file_id)])
    load_pending(db, index, pieced)
    before = _fingerprint(index, file_id)

    # a reindex whose first attempt dies after some of its pieces were loaded...
    job_id = _reindex_dying(db, index, pieced, file_id)
    with db.session() as session:  # its lease runs out; the job is claimable again
        session.get(Job, job_id).state = JobState.QUEUED
    # ...and whose second attempt completes: each event once, as before
    second = _run_job(ctx, [OwnerDuringParse(db, index, pieced, file_id)])
    assert second.attempts == 2
    load_pending(db, index, pieced)
    assert _fingerprint(index, file_id) == before
    # the loader removed the dead attempt's piece folder; the segment's own stays
    with db.read() as session:
        segment = Path(session.get(EvidenceFile, file_id).segment.path)
    assert list(pieced.segments_dir.glob("*/*.j*a*")) == [segment]


def test_pieces_of_a_failed_job_are_dropped_and_the_old_segment_reloaded(
    pieced: Settings, db: Database, index: ChdbIndex, tmp_path: Path
) -> None:
    file_id = _ingest(db, pieced, _write_ndjson(tmp_path / "big.jsonl", LINES, "f"))
    _run_job(WorkerContext(settings=pieced, db=db, worker_id="w"))
    load_pending(db, index, pieced)
    before = _fingerprint(index, file_id)

    job_id = _reindex_dying(db, index, pieced, file_id)
    queue.fail(db, job_id, "dying", "WorkerDies", permanent=True)

    assert load_waiting(db)  # the dead attempt's pieces are to be dropped
    load_pending(db, index, pieced)
    assert not load_waiting(db)
    assert _fingerprint(index, file_id) == before
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(LoadPiece)) == 0
        assert session.get(EvidenceFile, file_id).index_state is IndexState.LOADED
        assert session.get(EvidenceFile, file_id).status is FileStatus.FAILED


def test_pieces_are_inserted_about_one_part_at_a_time(
    pieced: Settings, db: Database, tmp_path: Path
) -> None:
    """A piece's INSERTs hold PIECE_INSERT_BYTES of its events: fewer events when they are
    wide."""
    narrow = _write_ndjson(tmp_path / "narrow.jsonl", LINES, "n")
    wide = tmp_path / "wide.jsonl"
    wide.write_text(narrow.read_text().replace('"tag": "n"', '"tag": "' + "w" * 2_000 + '"'))
    sizes = {}
    for name, path in (("narrow", narrow), ("wide", wide)):
        file_id = _ingest(db, pieced, path, name)
        _run_job(WorkerContext(settings=pieced, db=db, worker_id="w"))
        with db.read() as session:
            folder = Path(session.get(EvidenceFile, file_id).segment.path)
        first = segment_files(folder)[0]
        sizes[name] = piece_insert_rows(ReadyPiece(0, 1, file_id, 0, 0, PIECE, first))
    assert sizes["narrow"] > 4 * sizes["wide"]  # ~2 KB more per event: far fewer per INSERT
    assert sizes["wide"] * 2_000 < PIECE_INSERT_BYTES * 1.2


def test_a_later_piece_published_first_waits_for_its_attempts_first_piece(
    pieced: Settings, db: Database, index: ChdbIndex, tmp_path: Path
) -> None:
    """Pieces of one attempt may be published out of order (slices of a large file are
    written side by side): the first piece clears the file's rows, so no later piece of its
    attempt loads before it, or its rows would be cleared with the rest."""
    file_id = _ingest(db, pieced, _write_ndjson(tmp_path / "big.jsonl", LINES, "o"))
    ctx = WorkerContext(settings=pieced, db=db, worker_id="w")
    _run_job(ctx, [OwnerDuringParse(db, index, pieced, file_id)])
    load_pending(db, index, pieced)
    assert _rows(index, file_id) == LINES
    with db.read() as session:
        segment = Path(session.get(EvidenceFile, file_id).segment.path)
    first, second = segment_files(segment)[:2]

    with db.session() as session:  # a re-index, whose attempt publishes piece 1 first
        f = session.get(EvidenceFile, file_id)
        queue.enqueue(session, f, Operation.REINDEX, max_attempts=pieced.max_attempts)
    job = queue.claim(db, "w2", pieced.lease_seconds)
    assert job is not None
    publish_piece(db, job.id, job.attempts, file_id, 1, range(PIECE, 2 * PIECE), second)
    load_pending(db, index, pieced)
    assert _rows(index, file_id) == LINES  # piece 1 waits: the old rows are all there

    publish_piece(db, job.id, job.attempts, file_id, 0, range(0, PIECE), first)
    load_pending(db, index, pieced)
    found = _fingerprint(index, file_id)
    assert found["n"] == found["seqs"] == 2 * PIECE  # both pieces, each event once

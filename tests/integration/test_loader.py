"""Segments into the chDB index: batched loads, replacement on reindex, crash recovery."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import update

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.enums import FileStatus, IndexState
from casescope.model.tables import EvidenceFile, Segment
from casescope.parse.schema import EVENT_SCHEMA
from casescope.store.index import ChdbIndex
from casescope.store.load_queue import load_waiting
from casescope.store.loader import load_pending
from casescope.store.segments import SegmentWriter, read_segment, segment_path
from tests.integration.conftest import add_files


def make_batch(n: int, marker: str) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "seq": pa.array(range(n), pa.uint64()),
            "ts": pa.array(
                [1_600_000_000_000_000 + i for i in range(n)], pa.timestamp("us", "UTC")
            ),
            "event_id": pa.array([4624] * n, pa.uint32()),
            "channel": ["Security"] * n,
            "provider": ["Microsoft-Windows-Security-Auditing"] * n,
            "computer": ["PC1"] * n,
            "record_id": pa.array(range(1, n + 1), pa.uint64()),
            "level": pa.array([0] * n, pa.uint8()),
            "user_name": ["alice"] * n,
            "user_sid": [""] * n,
            "fields": pa.array([[("Marker", marker)]] * n, EVENT_SCHEMA.field("fields").type),
            "raw": [f'{{"marker": "{marker}"}}'] * n,
        },
        schema=EVENT_SCHEMA,
    )


def write_segment(settings: Settings, sha: str, batch: pa.RecordBatch) -> Path:
    with SegmentWriter(segment_path(settings.segments_dir, sha, 1), settings.tmp_dir) as w:
        w.write(batch)
        return w.commit()


def mark_ready(db: Database, file_id: int, path: Path, rows: int) -> None:
    with db.session() as session:
        seg = Segment(sha256=path.stem, parser_version=1, path=str(path), event_count=rows)
        session.add(seg)
        session.flush()
        f = session.get(EvidenceFile, file_id)
        f.segment_id, f.status, f.event_count = seg.id, FileStatus.COMPLETED, rows
        f.index_state, f.index_generation = IndexState.PENDING, f.index_generation + 1


def test_segment_round_trip_and_atomic_publish(settings: Settings) -> None:
    final = segment_path(settings.segments_dir, "ab" * 32, 1)
    try:
        with SegmentWriter(final, settings.tmp_dir) as w:
            w.write(make_batch(5, "x"))
            raise RuntimeError("crash mid-write")
    except RuntimeError:
        pass
    assert not final.exists() and not list(settings.tmp_dir.iterdir())
    path = write_segment(settings, "ab" * 32, make_batch(5, "x"))
    rows = sum(b.num_rows for b in read_segment(path))
    assert rows == 5


def test_many_files_load_in_few_inserts(settings: Settings, db: Database) -> None:
    ids = add_files(db, 30)
    for n, file_id in enumerate(ids):
        mark_ready(db, file_id, write_segment(settings, f"{n:064x}", make_batch(10, str(n))), 10)
    index = ChdbIndex(settings.index_dir)
    try:
        report = load_pending(db, index, settings)
        assert (report.files, report.rows, report.batches) == (30, 300, 1)
        assert index.count() == 300
        assert index.counts_by_file(1) == {i: 10 for i in ids}
        # nothing pending any more: a second run loads nothing
        assert load_pending(db, index, settings).files == 0
    finally:
        index.close()


def test_load_waiting_says_whether_a_load_has_work(settings: Settings, db: Database) -> None:
    """What `serve` asks before it takes the index alone to load (web/state.py)."""
    [file_id] = add_files(db, 1)
    assert not load_waiting(db)  # queued, not parsed: nothing for the loader yet
    mark_ready(db, file_id, write_segment(settings, "3" * 64, make_batch(4, "w")), 4)
    assert load_waiting(db)
    index = ChdbIndex(settings.index_dir)
    try:
        load_pending(db, index, settings)
    finally:
        index.close()
    assert not load_waiting(db)


def test_reload_replaces_rows_never_duplicates(settings: Settings, db: Database) -> None:
    [file_id] = add_files(db, 1)
    mark_ready(db, file_id, write_segment(settings, "1" * 64, make_batch(10, "old")), 10)
    index = ChdbIndex(settings.index_dir)
    try:
        load_pending(db, index, settings)
        # a re-index produced a different segment; and an owner crash left the state pending
        with db.session() as session:
            session.execute(update(EvidenceFile).values(segment_id=None))
        mark_ready(db, file_id, write_segment(settings, "2" * 64, make_batch(7, "new")), 7)
        load_pending(db, index, settings)
        assert index.count() == 7
        with db.session() as session:  # simulate: INSERT done, bookkeeping lost in a crash
            session.execute(update(EvidenceFile).values(index_state=IndexState.PENDING))
        load_pending(db, index, settings)
        assert index.count() == 7
        rows = index.query_rows("SELECT DISTINCT fields['Marker'] AS m FROM casescope.events")
        assert rows == [{"m": "new"}]
    finally:
        index.close()


def _bundle(settings: Settings, name: str, parts: list[tuple[int, pa.RecordBatch]]) -> Path:
    """A group load bundle (jobs/group.py) holding these (file id, events) of case 1."""
    tables = []
    for file_id, batch in parts:
        n = batch.num_rows
        table = pa.Table.from_batches([batch])
        table = table.append_column("case_id", pa.array([1] * n, pa.uint32()))
        tables.append(table.append_column("file_id", pa.array([file_id] * n, pa.uint64())))
    path = settings.bundles_dir / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.concat_tables(tables), path)
    return path


def _set_bundle(db: Database, file_ids: list[int], bundle: Path | None) -> None:
    with db.session() as session:
        session.execute(
            update(EvidenceFile)
            .where(EvidenceFile.id.in_(file_ids))
            .values(load_bundle=str(bundle) if bundle else None)
        )


def _markers(index: ChdbIndex) -> dict[int, set[str]]:
    rows = index.query_rows("SELECT file_id, fields['Marker'] AS m FROM casescope.events", {})
    out: dict[int, set[str]] = {}
    for row in rows:
        out.setdefault(int(row["file_id"]), set()).add(row["m"])
    return out


def test_bundles_load_only_the_files_that_refer_to_them(settings: Settings, db: Database) -> None:
    a, b, c = add_files(db, 3)
    for n, file_id in enumerate((a, b, c)):
        mark_ready(db, file_id, write_segment(settings, f"{n:064x}", make_batch(4, "seg")), 4)
    # one bundle holds a and b (as a group wrote them) and stale rows of c, which was
    # re-indexed alone since: c must come from its segment, and only once
    bundle = _bundle(
        settings,
        "w-1",
        [(a, make_batch(4, "bundle")), (b, make_batch(4, "bundle")), (c, make_batch(9, "stale"))],
    )
    _set_bundle(db, [a, b], bundle)
    index = ChdbIndex(settings.index_dir)
    try:
        load_pending(db, index, settings)
        assert _markers(index) == {a: {"bundle"}, b: {"bundle"}, c: {"seg"}}
        assert index.counts_by_file(1) == {a: 4, b: 4, c: 4}
        assert not bundle.exists()  # no pending file refers to it any more: pruned
    finally:
        index.close()


def test_missing_or_damaged_bundles_fall_back_to_segments(settings: Settings, db: Database) -> None:
    ids = add_files(db, 4)
    for n, file_id in enumerate(ids):
        mark_ready(db, file_id, write_segment(settings, f"{n:064x}", make_batch(5, "seg")), 5)
    damaged = settings.bundles_dir / "w-2.parquet"
    damaged.parent.mkdir(parents=True, exist_ok=True)
    damaged.write_bytes(b"PAR1" + b"\x00garbage" * 100)
    _set_bundle(db, ids[:2], settings.bundles_dir / "gone.parquet")
    _set_bundle(db, ids[2:], damaged)
    index = ChdbIndex(settings.index_dir)
    try:
        report = load_pending(db, index, settings)
        assert report.files == 4
        assert index.counts_by_file(1) == {i: 5 for i in ids}
        assert _markers(index) == {i: {"seg"} for i in ids}
    finally:
        index.close()

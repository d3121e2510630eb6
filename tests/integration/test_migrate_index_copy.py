"""`migrate verify` reads an embedded source's index from a private copy whose MergeTree
parts are hard links: whatever chDB does in the copy (loads, merges, deletes) leaves the
source's index byte for byte as it was, and the copy measures what the source holds."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa

from casescope.config import Settings
from casescope.migrate.endpoints import Source, source_index_copy
from casescope.migrate.verify import index_digests
from casescope.parse.batch import BatchBuilder
from casescope.store.index import ChdbIndex, LoadItem
from casescope.store.segments import SegmentWriter

SHAS = {file_id: f"{file_id:02x}" * 32 for file_id in (1, 2, 3, 4)}


def _batch(events: int) -> pa.RecordBatch:
    builder = BatchBuilder()
    for seq in range(events):
        ts = 1_700_000_000_000_000 + seq * 1_000_000
        builder.add((ts, 4624, "Security", "P", "DC1", seq, 4, "alice", ""), {}, "{}")
    return builder.flush()


def _segment(home: Path, name: str, events: int) -> Path:
    with SegmentWriter(home / "seg" / name / "events.parquet", home / "tmp") as writer:
        writer.write(_batch(events))
        return writer.commit()


def _files(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def test_writes_in_the_copy_leave_the_source_index_as_it_was(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    index = ChdbIndex(settings.index_dir)
    for file_id in (1, 2, 3):  # a part per load
        index.load([LoadItem(1, file_id, _segment(tmp_path, str(file_id), 10 * file_id))])
    expected = index_digests(index, 1, SHAS)
    index.close()
    before = _files(settings.index_dir)
    source = Source(settings, engine=None, scratch=tmp_path / "scratch")  # type: ignore[arg-type]
    with source_index_copy(source) as path:
        assert path is not None
        linked = [p for p in path.rglob("*.bin") if p.stat().st_nlink > 1]
        assert linked, "the parts' files are hard links to the source's"
        copy = ChdbIndex(path)
        try:
            assert index_digests(copy, 1, SHAS) == expected
            copy.load([LoadItem(1, 4, _segment(tmp_path, "4", 5))])
            copy.delete_files([2])
            copy.execute("OPTIMIZE TABLE casescope.events FINAL")
            assert set(index_digests(copy, 1, SHAS)) == {1, 3, 4}
        finally:
            copy.close()
    assert not path.exists()
    assert _files(settings.index_dir) == before
    reopened = ChdbIndex(settings.index_dir)
    try:
        assert index_digests(reopened, 1, SHAS) == expected
    finally:
        reopened.close()

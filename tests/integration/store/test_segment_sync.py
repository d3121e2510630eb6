"""Segments published unsynced, then made durable together (store/segments.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from casescope.store import segments
from casescope.store.segments import SegmentWriter, read_segment, sync_to_disk
from tests.integration.test_loader import make_batch


def test_unsynced_commit_publishes_a_complete_segment(tmp_path: Path) -> None:
    final = tmp_path / "seg" / "ab.parquet"
    with SegmentWriter(final, tmp_path / "tmp") as writer:
        writer.write(make_batch(3, "a"))
        writer.write(make_batch(2, "b"))
        assert writer.commit(sync=False) == final
    rows = [r for b in read_segment(final) for r in b.to_pylist()]
    assert [r["seq"] for r in rows] == [0, 1, 2, 0, 1]
    assert list((tmp_path / "tmp").iterdir()) == []  # the temporary file was renamed


def test_aborted_writer_leaves_nothing(tmp_path: Path) -> None:
    final = tmp_path / "seg" / "ab.parquet"
    with pytest.raises(RuntimeError), SegmentWriter(final, tmp_path / "tmp") as writer:
        writer.write(make_batch(3, "a"))
        raise RuntimeError("parse failed")
    assert not final.exists()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_sync_to_disk_falls_back_to_fsync_per_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = [tmp_path / f"{n}.parquet" for n in range(3)]
    for path in paths:
        path.write_bytes(b"x")
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(segments, "_syncfs", lambda fd: False)  # a platform without syncfs
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    sync_to_disk(paths)
    assert len(synced) == 3


def test_sync_to_disk_uses_one_syncfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [tmp_path / f"{n}.parquet" for n in range(3)]
    for path in paths:
        path.write_bytes(b"x")
    calls: list[int] = []
    real = segments._syncfs
    monkeypatch.setattr(segments, "_syncfs", lambda fd: calls.append(fd) or real(fd))
    monkeypatch.setattr(os, "fsync", lambda fd: pytest.fail("fsync after a working syncfs"))
    sync_to_disk(paths)
    sync_to_disk([])  # nothing to do
    assert len(calls) == 1

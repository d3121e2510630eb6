"""Immutable per-file Parquet segments, content-addressed by (evidence sha256, parser version).

A segment is written to a temporary file in the home's tmp dir and renamed into place only
when complete, so a crash never leaves a half segment under its final name.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import pyarrow as pa
import pyarrow.parquet as pq

from casescope.parse.schema import EVENT_SCHEMA

logger = logging.getLogger(__name__)

ROW_GROUP_ROWS = 50_000


def segment_variant(field_map: Mapping[str, str] | None) -> str:
    """Parsing with a field map gives other events from the same bytes: a distinct segment."""
    if not field_map:
        return ""
    canonical = json.dumps(dict(field_map), sort_keys=True).encode()
    return hashlib.sha256(canonical).hexdigest()[:12]


def segment_path(segments_dir: Path, sha256: str, parser_version: int, variant: str = "") -> Path:
    """The one place a segment for this content (and field map) lives."""
    suffix = f"-m{variant}" if variant else ""
    return segments_dir / sha256[:2] / f"{sha256}-p{parser_version}{suffix}.parquet"


#: A segment whose first batch is smaller than this is small (one parse batch holds the
#: whole file): it is written with LZ4. ZSTD's set-up per column chunk costs more CPU than
#: the rest of a small file's write (`bench/ingest.py`, CPU per file); large segments keep
#: ZSTD, which is smaller on EVTX events.
SMALL_SEGMENT_ROWS = 10_000
WRITE_BUFFER = 1 << 20


class _AbortOnError:
    """A writer used as a context manager: `abort()` when its block raises."""

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()


class SegmentWriter(_AbortOnError):
    """Streams batches into a segment; `commit()` publishes it atomically."""

    def __init__(self, final_path: Path, tmp_dir: Path) -> None:
        self.final_path = final_path
        tmp_dir.mkdir(parents=True, exist_ok=True)
        self._tmp_path = tmp_dir / f"{final_path.name}.{os.getpid()}.tmp"
        self._writer: pq.ParquetWriter | None = None
        self._sink: pa.NativeFile | None = None
        self.rows = 0

    def _open(self, first_rows: int) -> pq.ParquetWriter:
        compression = "lz4" if first_rows < SMALL_SEGMENT_ROWS else "zstd"
        # buffered: the writer's many small writes (one per page) become a few syscalls
        self._sink = pa.BufferedOutputStream(pa.OSFile(str(self._tmp_path), "wb"), WRITE_BUFFER)
        return pq.ParquetWriter(
            self._sink, EVENT_SCHEMA, compression=compression, write_statistics=["seq", "ts"]
        )

    def _close(self) -> None:
        writer, sink = self._writer, self._sink
        self._writer = self._sink = None
        try:
            if writer is not None:
                writer.close()
        finally:
            if sink is not None:
                sink.close()

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            if self._writer is None:
                self._writer = self._open(batch.num_rows)
            self._writer.write_batch(batch, row_group_size=ROW_GROUP_ROWS)
            self.rows += batch.num_rows

    def commit(self, sync: bool = True) -> Path:
        """Publish the segment under its final name. With `sync=False` its bytes may still
        be in the page cache: the caller must `sync_to_disk` it before any row names it."""
        if self._writer is None:
            self._writer = self._open(0)
        self._close()
        if sync:
            with self._tmp_path.open("rb") as handle:
                os.fsync(handle.fileno())
        self.final_path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp_path.replace(self.final_path)
        return self.final_path

    def abort(self) -> None:
        try:
            self._close()
        except (OSError, pa.ArrowException):  # a write already failed (a full disk): the
            pass  # flush of what is buffered fails too, and the partial file goes anyway
        finally:
            self._tmp_path.unlink(missing_ok=True)


def pieces_dir(final_path: Path, job_id: int, attempt: int) -> Path:
    """Where one job attempt writes a large file's segment as pieces: a directory of its
    own, so that a retry never writes over pieces the index owner may be reading."""
    return final_path.with_name(f"{final_path.stem}.j{job_id}a{attempt}")


#: Called with (piece number, first seq, end seq, path) once a piece is complete.
PublishPiece = Callable[[int, int, int, Path], None]


class PieceWriter(_AbortOnError):
    """Streams a large file's batches into a directory of pieces of about `piece_rows`
    events. Each complete piece is handed to `publish` while the parse goes on, so the
    index owner loads a large file during its parse rather than after it (store/pieces.py).

    Same interface as `SegmentWriter`; `commit()` returns the directory, which is the
    segment. Pieces already published stay on abort: the owner may be loading them.
    """

    def __init__(
        self,
        directory: Path,
        piece_rows: int,
        publish: PublishPiece,
        first_piece: int = 0,
        first_seq: int = 0,
    ) -> None:
        """`first_piece` and `first_seq`: where a slice of a file starts (jobs/slices.py)."""
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._piece_rows = piece_rows
        self._publish = publish
        self._writer: SegmentWriter | None = None
        self._piece = first_piece
        self._first_seq = first_seq
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        if self._writer is None:
            name = f"{self.directory.name}.{self._piece:05d}.parquet"
            self._writer = SegmentWriter(self.directory / name, self.directory)
        self._writer.write(batch)
        self.rows += batch.num_rows
        if self._writer.rows >= self._piece_rows:
            self._finish_piece()

    def _finish_piece(self) -> None:
        writer, self._writer = self._writer, None
        assert writer is not None
        path = writer.commit(sync=False)  # synced with the rest before completion
        end = self._first_seq + self.rows
        self._publish(self._piece, end - writer.rows, end, path)
        self._piece += 1

    def commit(self, sync: bool = True) -> Path:
        if self._writer is not None:
            self._finish_piece()
        if sync:
            sync_to_disk([self.directory])
        return self.directory

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
            self._writer = None


def _syncfs(fd: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syncfs(fd) == 0
    except (OSError, AttributeError):  # no syncfs(2) here (not Linux)
        return False


def sync_to_disk(paths: Sequence[Path]) -> None:
    """Make the written files (and their names) durable before a transaction names them.

    One `syncfs` of their filesystem costs one journal commit, where an `fsync` per file
    costs one each: for a group of small files that is most of their write time
    (`bench/bulk.py`). Where syncfs is missing or fails, each file is fsynced.
    """
    if not paths:
        return
    fd = os.open(paths[0].parent, os.O_RDONLY)
    try:
        if _syncfs(fd):
            return
    finally:
        os.close(fd)
    logger.debug("syncfs unavailable: fsync per file")
    for path in paths:
        for part in segment_files(path):
            with part.open("rb") as handle:
                os.fsync(handle.fileno())


def segment_files(path: Path) -> list[Path]:
    """The Parquet files of a segment: the segment itself, or its pieces in order."""
    return sorted(path.glob("*.parquet")) if path.is_dir() else [path]


def segment_bytes(path: Path) -> int:
    return sum(part.stat().st_size for part in segment_files(path))


def read_segment(path: Path, batch_size: int = 10_000) -> Iterator[pa.RecordBatch]:
    """Stream a segment (one file or a directory of pieces) back as event batches, never
    more than one row group in a batch (a row group is one parse batch, bounded in bytes:
    batches spanning row groups would hold 10,000 events however wide)."""
    for part in segment_files(path):
        reader = pq.ParquetFile(part)
        for group in range(reader.num_row_groups):
            yield from reader.iter_batches(batch_size=batch_size, row_groups=[group])


def _row_groups(path: Path) -> Iterator[tuple[int, int]]:
    """(events, uncompressed bytes) of each row group of a segment, in `seq` order."""
    for part in segment_files(path):
        meta = pq.read_metadata(part)
        for n in range(meta.num_row_groups):
            group = meta.row_group(n)
            yield group.num_rows, group.total_byte_size


def segment_data_bytes(path: Path) -> int:
    """Uncompressed bytes of a segment's events, from its Parquet metadata."""
    return sum(size for _, size in _row_groups(path))


def insert_slices(path: Path, events: int, max_bytes: int) -> list[tuple[int, int]]:
    """The `seq` ranges [start, end) of a segment of `events` events, each holding about
    `max_bytes` of events or less (uncompressed, from the Parquet metadata, spread evenly
    over each row group's events), an event larger than that alone. Events are numbered in
    row-group order from 0, so a slice's bytes are known without reading any event."""
    slices: list[tuple[int, int]] = []
    start = seq = 0
    room = float(max_bytes)
    for rows, size in _row_groups(path):
        per_event = size / max(rows, 1)
        end = seq + rows
        while seq < end:
            fit = min(end - seq, int(room // per_event) if per_event else end - seq)
            if fit == 0 and seq == start:
                fit = 1  # one event over max_bytes: an INSERT of its own
            if fit == 0:
                slices.append((start, seq))
                start, room = seq, float(max_bytes)
                continue
            seq += fit
            room -= fit * per_event
    if seq < events or start < seq:
        slices.append((start, max(seq, events)))
    return slices

"""A large EVTX file read as slices: chunk ranges parsed alone, with the whole file's `seq`.

An EVTX file is a 4 KiB file header and independent 64 KiB chunks: each chunk carries its
own string and template tables, so chunks [a, b) read alone are the records a whole-file
read gives for them. The `evtx` crate takes a file-like object; `ChunkRangeView` shows it
"file header + chunks [a, b)" with the header's chunk count, chunk numbers and checksum
rewritten for the view (the crate reads the chunk count from the header and warns on a
checksum that does not match; it checks each chunk on its own).

`seq` is an event's ordinal in its file (with the file's sha256, the stable key of marks,
findings and migrations), so a slice must number its events as the whole-file parse does.
A slice's first `seq` is the sum of the record counts of the chunks before it, from the
chunk headers: exact when every chunk reads to exactly the records its header names.
`plan_slices` therefore slices only a file whose chunk headers are all intact with ranges
that fit a 64 KiB chunk, and a slice whose parse reads another count than planned
(`Slice.events`) makes the slicing invalid (the caller then parses the file whole).
"""

from __future__ import annotations

import io
import logging
import struct
from dataclasses import dataclass
from pathlib import Path

from casescope.parse.evtx_layout import (
    CHUNK_MAGIC,
    CHUNK_SIZE,
    FILE_HEADER_SIZE,
    FILE_MAGIC,
    chunk_record_range,
    file_header,
)

logger = logging.getLogger(__name__)

_CHUNK_HEADER_READ = 24  # magic and first/last record number
_CHUNK_COUNT_AT = 42  # the file header's chunk count (u16)


@dataclass(frozen=True)
class Slice:
    """Chunks [chunk_from, chunk_to) of a file; their events are seq [seq_from, seq_from +
    events) of the whole file."""

    chunk_from: int
    chunk_to: int
    seq_from: int
    events: int

    @property
    def seq_to(self) -> int:
        return self.seq_from + self.events


class ChunkRangeView(io.RawIOBase):
    """A read-only file: `path`'s file header, rewritten for chunks [chunk_from, chunk_to),
    followed by those chunks. Reads go to the file: nothing but the header is held."""

    def __init__(self, path: Path, chunk_from: int, chunk_to: int) -> None:
        super().__init__()
        self._file = path.open("rb")
        template = self._file.read(FILE_HEADER_SIZE)
        try:
            self._header = file_header(template, chunk_to - chunk_from)
        except ValueError:
            self._file.close()
            raise
        # view offset p >= FILE_HEADER_SIZE is file offset p + chunk_from * CHUNK_SIZE
        self._base = chunk_from * CHUNK_SIZE
        size = self._file.seek(0, io.SEEK_END)
        self._size = min(FILE_HEADER_SIZE + (chunk_to - chunk_from) * CHUNK_SIZE, size - self._base)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        start = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, start + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        out = memoryview(buffer).cast("B")
        wanted = min(len(out), max(0, self._size - self._pos))
        done = 0
        if self._pos < FILE_HEADER_SIZE and wanted:
            part = self._header[self._pos : self._pos + wanted]
            out[: len(part)] = part
            done = len(part)
        if done < wanted:
            self._file.seek(self._base + self._pos + done)
            done += self._file.readinto(out[done:wanted]) or 0
        self._pos += done
        return done

    def close(self) -> None:
        self._file.close()
        super().close()


def chunk_counts(path: Path) -> list[int] | None:
    """The record count of each chunk the file header declares, from the chunk headers, in
    file order; None when the layout is not sound enough to slice: not a whole number of
    chunks, a declared chunk whose header is not intact (its magic, or a range a 64 KiB chunk
    cannot hold), or a chunk header past the declared ones (logs keep unused chunks zeroed).
    Such a file is parsed whole."""
    with path.open("rb") as handle:
        head = handle.read(FILE_HEADER_SIZE)
        size = handle.seek(0, io.SEEK_END)
        if len(head) < FILE_HEADER_SIZE or not head.startswith(FILE_MAGIC):
            return None
        if (size - FILE_HEADER_SIZE) % CHUNK_SIZE:
            return None
        declared = struct.unpack_from("<H", head, _CHUNK_COUNT_AT)[0]
        counts: list[int] = []
        for n, offset in enumerate(range(FILE_HEADER_SIZE, size, CHUNK_SIZE)):
            handle.seek(offset)
            header = handle.read(_CHUNK_HEADER_READ)
            found = chunk_record_range(header)
            if n >= declared:
                if header.startswith(CHUNK_MAGIC):
                    return None
                continue
            if found is None:
                return None
            counts.append(found[1] - found[0] + 1)
    return counts if len(counts) == declared else None


def plan_slices(counts: list[int], slices: int, min_chunks: int) -> list[Slice]:
    """Chunks with `counts` records cut into at most `slices` ranges of at least
    `min_chunks` chunks, of about equal records; one slice when the file is too small."""
    total = len(counts)
    wanted = max(1, min(slices, total // max(min_chunks, 1)))
    events = sum(counts)
    planned: list[Slice] = []
    chunk = seq = 0
    for n in range(wanted):
        target = events * (n + 1) // wanted
        start, first = chunk, seq
        while chunk < total and (seq < target or n == wanted - 1):
            seq += counts[chunk]
            chunk += 1
        if chunk > start:
            planned.append(Slice(start, chunk, first, seq - first))
    return planned

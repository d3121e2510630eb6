"""The binary layout of an EVTX file: its 4 KiB file header and its 64 KiB chunks.

The parser reads records through the `evtx` crate; this module only knows the headers around
them, for what the crate does not do: estimating a file's records from its chunk headers,
checking a file for truncation, writing a one-chunk file for salvage (`evtx_salvage`), and
assembling a valid EVTX file from existing chunks (benchmarks and tests).

File header: magic, first/last chunk number (u64 at 8, 16), next record number (u64 at 24),
chunk count (u16 at 42), flags (u32 at 120), CRC32 of bytes 0-119 (u32 at 124).
Chunk header: magic, first/last record number (u64 at 8, 16), first/last record id (u64 at
24, 32), free space offset (u32 at 48), CRC32 of the records (bytes 512 to the free space
offset; u32 at 52), CRC32 of bytes 0-119 and 128-511 (u32 at 124).
"""

from __future__ import annotations

import struct
import zlib

FILE_MAGIC = b"ElfFile\x00"
CHUNK_MAGIC = b"ElfChnk\x00"
FILE_HEADER_SIZE = 4096
CHUNK_SIZE = 65536
CHUNK_HEADER_SIZE = 512
_FILE_CHECKED = 120  # the file header's checksum covers its first 120 bytes


def chunk_record_range(header: bytes) -> tuple[int, int] | None:
    """(first, last) record number of a chunk from its first 24 bytes; None when they are not
    a chunk header or the range is impossible (a 64 KiB chunk holds fewer records)."""
    if len(header) < 24 or header[:8] != CHUNK_MAGIC:
        return None
    first, last = struct.unpack_from("<QQ", header, 8)
    return (first, last) if first <= last < first + CHUNK_SIZE else None


def file_header(template: bytes, chunks: int, next_record: int | None = None) -> bytes:
    """`template` (a file header) rewritten for a file of `chunks` chunks numbered from 0,
    with `next_record` as the next record number when given; checksum recomputed."""
    if len(template) < FILE_HEADER_SIZE or template[:8] != FILE_MAGIC:
        raise ValueError("not an EVTX file header")
    if not 1 <= chunks <= 0xFFFF:
        raise ValueError(f"an EVTX file holds 1 to 65,535 chunks, not {chunks:,}")
    header = bytearray(template[:FILE_HEADER_SIZE])
    struct.pack_into("<QQ", header, 8, 0, chunks - 1)  # first and last chunk number
    if next_record is not None:
        struct.pack_into("<Q", header, 24, next_record)
    struct.pack_into("<H", header, 42, chunks)
    struct.pack_into("<I", header, 124, zlib.crc32(header[:_FILE_CHECKED]))
    return bytes(header)


def file_header_is_intact(header: bytes) -> bool:
    """Whether a file header's checksum matches its first 120 bytes."""
    if len(header) < 128:
        return False
    return zlib.crc32(header[:_FILE_CHECKED]) == struct.unpack_from("<I", header, 124)[0]


def chunk_fill(chunk: bytes) -> int:
    """Bytes a chunk's header and records take (its free space offset)."""
    return int(struct.unpack_from("<I", chunk, 48)[0])


def chunk_is_intact(chunk: bytes) -> bool:
    """Whether `chunk` is a whole chunk with both checksums right (header and records)."""
    if len(chunk) != CHUNK_SIZE or chunk_record_range(chunk) is None:
        return False
    free, records_crc = struct.unpack_from("<II", chunk, 48)
    header_crc = struct.unpack_from("<I", chunk, 124)[0]
    return (
        CHUNK_HEADER_SIZE <= free <= CHUNK_SIZE
        and zlib.crc32(chunk[CHUNK_HEADER_SIZE:free]) == records_crc
        and zlib.crc32(chunk[128:CHUNK_HEADER_SIZE], zlib.crc32(chunk[:120])) == header_crc
    )

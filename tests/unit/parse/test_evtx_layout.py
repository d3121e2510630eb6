"""EVTX headers: chunk record ranges and checksums, a file header rewritten for new chunks."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import evtx
import pytest

from casescope.model.enums import FileType
from casescope.parse.evtx_layout import (
    CHUNK_SIZE,
    FILE_HEADER_SIZE,
    chunk_fill,
    chunk_is_intact,
    chunk_record_range,
    file_header,
)
from casescope.parse.files import estimate_events, iter_batches
from casescope.parse.report import ParseReport


def chunks_of(path: Path) -> list[bytes]:
    data = path.read_bytes()
    return [data[at : at + CHUNK_SIZE] for at in range(FILE_HEADER_SIZE, len(data), CHUNK_SIZE)]


def largest(attack_samples: Path) -> Path:
    return max(attack_samples.rglob("*.evtx"), key=lambda p: (p.stat().st_size, p.name))


def test_file_header_for_new_chunks(attack_samples: Path) -> None:
    template = largest(attack_samples).read_bytes()[:FILE_HEADER_SIZE]
    header = file_header(template, 300, next_record=12_345)
    assert len(header) == FILE_HEADER_SIZE and header[:8] == template[:8]
    assert struct.unpack_from("<QQQ", header, 8) == (0, 299, 12_345)
    assert struct.unpack_from("<H", header, 42)[0] == 300
    assert struct.unpack_from("<I", header, 124)[0] == zlib.crc32(header[:120])
    assert header[44:120] == template[44:120] and header[128:] == template[128:]
    kept = file_header(template, 1)
    assert kept[24:32] == template[24:32]  # the next record number, unchanged
    with pytest.raises(ValueError, match="not an EVTX file header"):
        file_header(b"x" * FILE_HEADER_SIZE, 1)
    for chunks in (0, 65_536):
        with pytest.raises(ValueError, match="1 to 65,535 chunks"):
            file_header(template, chunks)


def test_chunk_ranges_and_checksums(attack_samples: Path) -> None:
    source = largest(attack_samples)
    chunks = chunks_of(source)  # 3 chunks in use, then preallocated zeros
    ranges = [chunk_record_range(chunk) for chunk in chunks]
    assert [chunk_is_intact(chunk) for chunk in chunks] == [r is not None for r in ranges]
    assert ranges[:3] == [(1, 140), (141, 285), (286, 351)] and not any(ranges[3:])
    assert estimate_events(source, FileType.EVTX) == 351
    chunk = chunks[0]
    free = chunk_fill(chunk)
    assert 512 < free <= CHUNK_SIZE
    for offset in (9, 200, 700, free - 1):  # header, string table, records
        broken = bytearray(chunk)
        broken[offset] ^= 0x01
        assert not chunk_is_intact(bytes(broken)), offset
    if free < CHUNK_SIZE:  # the free space after the records is not checksummed
        spare = bytearray(chunk)
        spare[-1] ^= 0x01
        assert chunk_is_intact(bytes(spare))
    assert not chunk_is_intact(chunk[:-1])
    assert chunk_record_range(b"\x00" * 24) is None
    impossible = bytearray(chunk[:24])
    struct.pack_into("<QQ", impossible, 8, 10, 10 + CHUNK_SIZE)
    assert chunk_record_range(bytes(impossible)) is None


def test_chunks_of_several_files_make_one_healthy_file(
    attack_samples: Path, tmp_path: Path
) -> None:
    """Whole chunks from different files behind one rewritten header: every record reads,
    with checksums validated, and the estimate agrees."""
    sources = sorted(attack_samples.rglob("*.evtx"), key=lambda p: (-p.stat().st_size, p.name))
    chunks = [c for path in sources[:3] for c in chunks_of(path) if chunk_is_intact(c)]
    template = sources[1].read_bytes()[:FILE_HEADER_SIZE]
    joined = tmp_path / "joined & rewritten.evtx"
    joined.write_bytes(file_header(template, len(chunks)) + b"".join(chunks))
    expected = sum(
        last - first + 1 for first, last in filter(None, map(chunk_record_range, chunks))
    )
    parser = evtx.PyEvtxParser(str(joined), number_of_threads=1, validate_checksums=True)
    assert sum(1 for _ in parser.records_json()) == expected
    report = ParseReport()
    assert sum(b.num_rows for b in iter_batches(joined, FileType.EVTX, report)) == expected
    assert (report.skipped, report.error, report.warnings) == (0, None, [])
    assert estimate_events(joined, FileType.EVTX) == expected

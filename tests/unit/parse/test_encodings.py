"""UTF-16/UTF-32 (LE/BE, with a BOM) and UTF-8-with-BOM text logs: sniffed and streamed."""

from __future__ import annotations

import codecs
import io
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pytest

from casescope.model.enums import FileType
from casescope.parse.files import iter_batches
from casescope.parse.report import ParseReport
from casescope.parse.schema import EVENT_SCHEMA
from casescope.parse.sniff import detect_file_type, utf8_chunks

MiB = 1024 * 1024

#: Encoding name and BOM: each encoded file is the BOM then the text in that encoding.
ENCODINGS = {
    "utf-16-le": codecs.BOM_UTF16_LE,
    "utf-16-be": codecs.BOM_UTF16_BE,
    "utf-32-le": codecs.BOM_UTF32_LE,
    "utf-32-be": codecs.BOM_UTF32_BE,
    "utf-8": codecs.BOM_UTF8,
}
#: Beyond ASCII and the BMP: accents, CJK, an emoji (a surrogate pair in UTF-16).
NDJSON = (
    '{"@timestamp": "2024-03-01T10:00:00Z", "host": "PC-é", "msg": "日本語 ✓ 😀"}\r\n'
    "\n"
    '{"@timestamp": "2024-03-01T10:00:01Z", "host": "PC-2", "user": "Ünïcødé"}\n'
)
CSV = 'TimeCreated;Computer;Message\r\n2024-03-01 10:00:00;PC-é;"日本語; 😀"\r\n'


def encoded(text: str, encoding: str) -> bytes:
    return ENCODINGS[encoding] + text.encode(encoding)


def parse(path: Path, file_type: FileType, **kw: object) -> tuple[list[dict], ParseReport]:
    report = ParseReport()
    batches = list(iter_batches(path, file_type, report, **kw))  # type: ignore[arg-type]
    return pa.Table.from_batches(batches, EVENT_SCHEMA).to_pylist(), report


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize(("text", "file_type"), [(NDJSON, FileType.NDJSON), (CSV, FileType.CSV)])
def test_bom_files_read_like_utf8(
    tmp_path: Path, encoding: str, text: str, file_type: FileType
) -> None:
    plain, marked = tmp_path / "plain", tmp_path / f"bom-{encoding}"
    plain.write_bytes(text.encode("utf-8"))
    marked.write_bytes(encoded(text, encoding))
    assert detect_file_type(marked) is file_type
    expected, _ = parse(plain, file_type)
    rows, report = parse(marked, file_type)
    assert rows == expected and report.warnings == [] and report.skipped == 0
    assert any("😀" in value for row in rows for _, value in row["fields"])


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-be"])
def test_transcoding_survives_any_chunk_boundary(encoding: str) -> None:
    data = encoded(NDJSON * 3, encoding)
    for size in (1, 2, 3, 5, 7, 64):
        out = b"".join(utf8_chunks(io.BytesIO(data), size))
        assert out == (NDJSON * 3).encode("utf-8")


def test_utf8_without_bom_is_passed_through() -> None:
    data = b'{"a": "caf\xe9"}\n'  # Windows-1252 in a UTF-8 file: left for the parser to report
    assert b"".join(utf8_chunks(io.BytesIO(data), 4)) == data


def test_cp1252_bytes_in_utf8_still_warn_per_line(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b'{"a": "ok"}\n{"a": "caf\xe9"}\n')
    assert detect_file_type(path) is FileType.NDJSON
    rows, report = parse(path, FileType.NDJSON)
    assert len(rows) == 2 and report.warnings == ["line 2: invalid UTF-8 replaced with U+FFFD"]


def test_bad_utf16_code_units_are_replaced_and_counted_in_csv(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    lone_surrogate = b"\x00\xd8"  # a high surrogate with no low one after it
    body = "a,b\n1,x".encode("utf-16-le") + lone_surrogate + "y\n".encode("utf-16-le")
    path.write_bytes(codecs.BOM_UTF16_LE + body)
    assert detect_file_type(path) is FileType.CSV
    [row], report = parse(path, FileType.CSV)
    assert dict(row["fields"])["b"] == "x\ufffdy"
    assert report.warnings == ["1 undecodable byte sequence(s) replaced with U+FFFD"]


def test_large_utf16_ndjson_is_streamed_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    line = '{"@timestamp": "2024-03-01T10:00:00Z", "host": "PC-é", "n": %d, "pad": "%s"}\n'
    with path.open("wb") as out:
        out.write(codecs.BOM_UTF16_BE)
        for chunk in range(40):
            text = "".join(line % (n, "ü" * 200) for n in range(chunk * 1000, chunk * 1000 + 1000))
            out.write(text.encode("utf-16-be"))
    assert path.stat().st_size > 16 * MiB
    assert detect_file_type(path) is FileType.NDJSON
    report, count, last = ParseReport(), 0, None
    tracemalloc.start()
    try:
        for batch in iter_batches(path, FileType.NDJSON, report, batch_size=2000):
            count += batch.num_rows
            last = batch.slice(batch.num_rows - 1).to_pylist()[0]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 40_000 and report.warnings == []
    assert last is not None and dict(last["fields"])["n"] == "39999"
    assert peak < 12 * MiB, (
        f"peak {peak / MiB:.1f} MiB for a {path.stat().st_size / MiB:.0f} MiB file"
    )

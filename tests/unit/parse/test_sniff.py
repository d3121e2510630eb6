"""Format detection by content, never by name."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from casescope.model.enums import FileType
from casescope.parse.sniff import detect_file_type


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", FileType.UNKNOWN),
        (b"\n\n  \n", FileType.UNKNOWN),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), FileType.UNKNOWN),
        (random.Random(1).randbytes(4096), FileType.UNKNOWN),
        (b"just some prose, nothing else\n", FileType.UNKNOWN),
        (b"PK\x03\x04" + bytes(100), FileType.UNKNOWN),
        (b'{\n  "pretty": "printed"\n}\n', FileType.UNKNOWN),
        (b'[{"a": 1}]\n', FileType.UNKNOWN),
        (b'\xef\xbb\xbf{"a": 1}\n{"a": 2}\n', FileType.NDJSON),
        (b'{"a": 1}\r\nnot json\r\n{"a": 3}\r\n', FileType.NDJSON),
        (b'\n\n{"only": "one line, no newline"}', FileType.NDJSON),
        (b"a,b,c\n1,2,3\n4,5,6\n", FileType.CSV),
        (b'\xef\xbb\xbf"x";"y"\r\n"1";"2"\r\n', FileType.CSV),
        (b"a\tb\n1\t2\n", FileType.CSV),
        (b"a|b|c\n1|2|3\n", FileType.CSV),
        (b"a,b\n1,2\n1,2,3,4,5\n1\n9,9,9\n", FileType.UNKNOWN),  # inconsistent widths
        (b"a,a\n1,2\n", FileType.UNKNOWN),  # a header names each column once
        (b"ElfFile\x00", FileType.EVTX),
    ],
)
def test_detect_by_content(tmp_path: Path, content: bytes, expected: FileType) -> None:
    path = tmp_path / "evidence.evtx"  # the extension must not matter
    path.write_bytes(content)
    assert detect_file_type(path) is expected


def test_real_evtx_under_another_name(attack_samples: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "log.csv"
    renamed.write_bytes(next(attack_samples.rglob("*.evtx")).read_bytes())
    assert detect_file_type(renamed) is FileType.EVTX


def test_large_files_are_judged_on_their_first_64_kib(tmp_path: Path) -> None:
    huge_line = tmp_path / "huge.jsonl"
    huge_line.write_bytes(b'{"blob": "' + b"A" * 200_000 + b'"}\n')
    assert detect_file_type(huge_line) is FileType.NDJSON
    many_rows = tmp_path / "rows.csv"
    many_rows.write_text("ts,host,msg\n" + '2024-01-01,h,"a, b"\n' * 20_000)
    assert detect_file_type(many_rows) is FileType.CSV

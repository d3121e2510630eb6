"""CSV: big fields, field maps, delimiters, encodings, ragged and broken rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from casescope.model.enums import FileType
from casescope.parse.files import estimate_events, iter_batches
from casescope.parse.report import ParseReport
from casescope.parse.schema import EVENT_SCHEMA


def parse(path: Path, **kw: object) -> tuple[list[dict], ParseReport]:
    report = ParseReport()
    batches = list(iter_batches(path, FileType.CSV, report, **kw))  # type: ignore[arg-type]
    assert all(batch.schema.equals(EVENT_SCHEMA) for batch in batches)
    return pa.Table.from_batches(batches, EVENT_SCHEMA).to_pylist(), report


def test_200k_character_field_and_field_map(tmp_path: Path) -> None:
    path = tmp_path / "proxy.csv"
    big = "x" * 200_000
    path.write_text(
        f"When,Host,Url,Code\n2024-05-06 07:08:09,proxy1,{big},7\n"
        f'05/06/2024 07:08:10 PM,p2,"/a,b",8\n'
    )
    rows, report = parse(path, field_map={"ts": "When", "computer": "Host", "event_id": "Code"})
    assert len(rows) == 2 and len(dict(rows[0]["fields"])["Url"]) == 200_000
    assert rows[0]["ts"] == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert rows[1]["ts"] == datetime(2024, 5, 6, 19, 8, 10, tzinfo=UTC)
    assert [(r["computer"], r["event_id"]) for r in rows] == [("proxy1", 7), ("p2", 8)]
    assert orjson.loads(rows[1]["raw"]) == {
        "When": "05/06/2024 07:08:10 PM",
        "Host": "p2",
        "Url": "/a,b",
        "Code": "8",
    }
    assert report.warnings == []


def test_unknown_field_map_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="unknown column"):
        iter_batches(path, FileType.CSV, ParseReport(), field_map={"timestamp": "a"})


def test_semicolons_cp1252_ragged_rows_and_header_names(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(
        "time;user;note;note;\r\n2024-01-01T00:00:00;jos\xe9;a;b;c;extra\r\n\r\n;;;;\r\n"
        "2024-01-02T00:00:00;ann\r\n".encode("cp1252")
    )
    rows, report = parse(path)
    assert len(rows) == 2
    fields = dict(rows[0]["fields"])
    assert fields == {
        "time": "2024-01-01T00:00:00",
        "user": "josé",
        "note": "a",
        "note_2": "b",
        "column_4": "c",
        "_extra_0": "extra",
    }
    assert rows[0]["user_name"] == "josé" and rows[1]["user_name"] == "ann"
    assert rows[1]["ts"] == datetime(2024, 1, 2, tzinfo=UTC)
    assert report.warnings == ["not valid UTF-8: read as cp1252"]


def test_tabs_bom_and_quoted_newlines(tmp_path: Path) -> None:
    path = tmp_path / "tabs.tsv"
    path.write_bytes(b'\xef\xbb\xbfEventID\tComputer\tMessage\n4624\tDC1\t"two\nlines"\n')
    [row], report = parse(path)
    assert (row["event_id"], row["computer"]) == (4624, "DC1")
    assert dict(row["fields"])["Message"] == "two\nlines"
    assert report.warnings == []


def test_invalid_utf8_after_the_sample_is_replaced_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    good = "".join(f"2024-01-01T00:00:{n % 60:02d},host{n}\n" for n in range(5000))
    path.write_bytes(b"ts,host\n" + good.encode() + b"2024-01-02T00:00:00,bad\xff\xfe\n")
    rows, report = parse(path)
    assert len(rows) == 5001 and dict(rows[-1]["fields"])["host"] == "bad\ufffd\ufffd"
    assert report.warnings == ["2 undecodable byte sequence(s) replaced with U+FFFD"]


def test_over_long_line_and_oversized_field_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(f'a,b\n1,{"y" * 5000}\n2,"{"z" * 3000}\n{"z" * 3000}"\n3,ok\n')
    rows, report = parse(path, max_line_bytes=4096)
    assert [dict(r["fields"])["a"] for r in rows] == ["3"]
    assert report.skipped == 2
    assert report.warnings[0] == "line 2: 5,003 characters, over the line limit, skipped"
    assert "field larger than field limit" in report.warnings[1]


def test_header_only_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("a,b\n")
    assert parse(path) == ([], ParseReport())
    path.write_text("")
    assert parse(path) == ([], ParseReport())


def test_estimate(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("a,b\n" + "".join(f"{n},{'v' * (n % 40)}\n" for n in range(50_000)))
    assert 45_000 <= estimate_events(path, FileType.CSV) <= 55_000

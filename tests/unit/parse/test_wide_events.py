"""Wide events: batches are cut by bytes as well as by events, and an event is kept to
EVENT_CHARS of raw record and of field values, with a warning naming its line or row
(parse/columns.py, docs/decisions.md "Wide events")."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from casescope.model.enums import FileType
from casescope.parse.columns import (
    BATCH_RAW_CHARS,
    EVENT_CHARS,
    WIDE_BATCH_RAW_CHARS,
    WIDE_EVENT_CHARS,
    batch_full,
)
from casescope.parse.files import iter_batches
from casescope.parse.report import ParseReport
from casescope.parse.schema import EVENT_SCHEMA

MB = 10**6


def _parse(path: Path, kind: FileType) -> tuple[list[pa.RecordBatch], ParseReport]:
    report = ParseReport()
    return list(iter_batches(path, kind, report)), report


def _line(n: int, size: int) -> str:
    return json.dumps({"ts": f"2024-01-01T00:00:{n % 60:02d}Z", "n": n, "Blob": "a" * size})


def test_ndjson_batches_are_cut_by_bytes(tmp_path: Path) -> None:
    path = tmp_path / "wide.jsonl"
    path.write_text("".join(_line(n, MB) + "\n" for n in range(10)))  # under the event cap
    batches, report = _parse(path, FileType.NDJSON)
    assert report.warning_count == 0
    assert [b.num_rows for b in batches] == [4, 4, 2]  # wide events: 4 lines of ~1 MB per 4 MiB
    assert all(sum(map(len, b.column("raw").to_pylist())) <= WIDE_BATCH_RAW_CHARS for b in batches)
    table = pa.Table.from_batches(batches, EVENT_SCHEMA)
    assert table.column("seq").to_pylist() == list(range(10))


def test_the_wide_cut_applies_to_wide_events_only() -> None:
    narrow, wide = 2_000, WIDE_EVENT_CHARS + 1_000  # characters of raw record per event
    for events in (100, 2_000, 8_000):  # ~16 MB of usual events: only the 16 MiB bound
        assert batch_full(narrow * events, events) == (narrow * events > BATCH_RAW_CHARS)
    assert not batch_full(wide * 100, 100)  # 1.7 MB
    assert batch_full(wide * 300, 300)  # 5.2 MB of events of 17 KB
    assert not batch_full(WIDE_BATCH_RAW_CHARS + 1, WIDE_BATCH_RAW_CHARS // 2_000)  # mixed


def test_ndjson_event_over_the_cap_is_kept_to_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    path.write_text(_line(0, 10) + "\n" + _line(1, 3 * MB) + "\n" + _line(2, 10) + "\n")
    batches, report = _parse(path, FileType.NDJSON)
    rows = pa.Table.from_batches(batches, EVENT_SCHEMA).to_pylist()
    assert [r["seq"] for r in rows] == [0, 1, 2]
    small, huge = rows[0], rows[1]
    assert len(huge["raw"]) == EVENT_CHARS and huge["raw"] == _line(1, 3 * MB)[:EVENT_CHARS]
    fields = dict(huge["fields"])
    assert sum(map(len, fields.values())) == EVENT_CHARS
    assert fields["n"] == "1" and fields["Blob"].startswith("aaa")  # earlier fields whole
    assert small["raw"] == _line(0, 10) and rows[2]["raw"] == _line(2, 10)
    assert report.warning_count == 1
    assert report.warnings[0].startswith("line 2: an event of 3,000,0")
    assert "kept to the first 1,048,576" in report.warnings[0]


def test_csv_row_over_the_cap_is_kept_to_it(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(f"When,Url\n2024-05-06 07:08:09,{'x' * (2 * MB)}\n2024-05-06 07:08:10,/a\n")
    batches, report = _parse(path, FileType.CSV)
    rows = pa.Table.from_batches(batches, EVENT_SCHEMA).to_pylist()
    assert len(rows) == 2 and len(rows[0]["raw"]) == EVENT_CHARS
    assert len(dict(rows[0]["fields"])["Url"]) < EVENT_CHARS  # "When" came first
    assert dict(rows[1]["fields"])["Url"] == "/a"
    assert report.warning_count == 1 and report.warnings[0].startswith("row 2: an event of")

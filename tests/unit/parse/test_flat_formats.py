"""NDJSON and CSV parsing: streaming, bad lines, encodings, field rules, memory bounds."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from casescope.model.enums import FileType
from casescope.parse import ParseReport, estimate_events, iter_batches
from casescope.parse.schema import EVENT_SCHEMA


def parse(path: Path, file_type: FileType, **kw: object) -> tuple[list[dict], ParseReport]:
    report = ParseReport()
    batches = list(iter_batches(path, file_type, report, **kw))  # type: ignore[arg-type]
    for batch in batches:
        assert batch.schema.equals(EVENT_SCHEMA)
    rows = pa.Table.from_batches(batches, EVENT_SCHEMA).to_pylist() if batches else []
    return rows, report


def test_ndjson_core_columns_and_flattening(tmp_path: Path) -> None:
    path = tmp_path / "edr.jsonl"
    path.write_text(
        '{"@timestamp": "2024-03-01T10:00:00.123Z", "host": {"name": "WS1"}, '
        '"event": {"code": "4688"}, "process": {"args": ["a", "b"], "pid": 42, "ok": true}}\n'
        "\n"
        '{"timestamp": 1709287200, "Computer": "WS2", "EventID": 1, "x": null}\n'
    )
    rows, report = parse(path, FileType.NDJSON)
    assert [r["seq"] for r in rows] == [0, 1]
    first, second = rows
    assert first["ts"] == datetime(2024, 3, 1, 10, 0, 0, 123000, tzinfo=UTC)
    assert (first["computer"], first["event_id"]) == ("WS1", 4688)
    fields = dict(first["fields"])
    assert fields["process.args"] == '["a","b"]' and fields["process.pid"] == "42"
    assert fields["process.ok"] == "true"
    assert second["ts"] == datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    assert (second["computer"], second["event_id"]) == ("WS2", 1)
    assert "x" not in dict(second["fields"])
    assert report.warnings == []


def test_ndjson_evtx_export_is_normalised_like_evtx(tmp_path: Path) -> None:
    path = tmp_path / "hayabusa.jsonl"
    path.write_text(
        '{"Event": {"System": {"EventID": {"#attributes": {"Qualifiers": 16384}, "#text": 7036},'
        '"Channel": "System", "Computer": "DC1", "EventRecordID": 99,'
        '"Provider": {"#attributes": {"Name": "Service Control Manager"}},'
        '"TimeCreated": {"#attributes": {"SystemTime": "2024-01-02T03:04:05.000006Z"}}},'
        '"EventData": {"param1": "Windows Update", "param2": "running"}}}\n'
    )
    [row], _ = parse(path, FileType.NDJSON)
    assert (row["event_id"], row["channel"], row["computer"], row["record_id"]) == (
        7036,
        "System",
        "DC1",
        99,
    )
    assert row["provider"] == "Service Control Manager"
    assert row["ts"] == datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert dict(row["fields"]) == {"param1": "Windows Update", "param2": "running"}


def test_ndjson_bad_lines_are_reported_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        b'{"msg": "one"}\n'
        b'{"msg": "caf\xe9 latin-1 byte"}\n'
        b"this is not json\n"
        b"[1, 2, 3]\n"
        b'{"msg": "last", "no newline at end": 1}'
    )
    rows, report = parse(path, FileType.NDJSON)
    assert [dict(r["fields"])["msg"] for r in rows] == ["one", "caf\ufffd latin-1 byte", "last"]
    text = "\n".join(report.warnings)
    assert "line 2: invalid UTF-8" in text
    assert "line 3: not valid JSON" in text and "line 4: a JSON list" in text
    assert report.skipped == 2


def test_ndjson_50_mb_line_is_skipped_without_buffering_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as out:
        out.write(b'{"n": 1}\n{"blob": "')
        chunk = b"A" * (1024 * 1024)
        for _ in range(50):
            out.write(chunk)
        out.write(b'"}\n{"n": 3}\n')
    tracemalloc.start()
    rows, report = parse(path, FileType.NDJSON, max_line_bytes=1024 * 1024)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert [dict(r["fields"]).get("n") for r in rows] == ["1", "3"]
    assert "line 2: 52,428,812 bytes is over the 1,048,576-byte line limit" in report.warnings[0]
    assert peak < 12 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB for a 50 MiB line"


def test_csv_with_200k_character_field_and_field_map(tmp_path: Path) -> None:
    path = tmp_path / "proxy.csv"
    big = "x" * 200_000
    path.write_text(
        f"When,Host,Url\n2024-05-06 07:08:09,proxy1,{big}\n05/06/2024 07:08:10 PM,p2,/a\n"
    )
    rows, report = parse(path, FileType.CSV, field_map={"ts": "When", "computer": "Host"})
    assert len(rows) == 2 and len(dict(rows[0]["fields"])["Url"]) == 200_000
    assert rows[0]["ts"] == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert rows[1]["ts"] == datetime(2024, 5, 6, 19, 8, 10, tzinfo=UTC)
    assert [r["computer"] for r in rows] == ["proxy1", "p2"]
    assert report.warnings == []


def test_csv_semicolons_cp1252_and_ragged_rows(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes("time;user;note\n2024-01-01T00:00:00;jos\xe9;a;extra\n".encode("cp1252"))
    [row], report = parse(path, FileType.CSV)
    fields = dict(row["fields"])
    assert fields["user"] == "josé" and fields["_extra_0"] == "extra"
    assert row["user_name"] == "josé"
    assert any("cp1252" in w for w in report.warnings)


def test_unparseable_timestamp_is_null_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"timestamp": "yesterday-ish"}\n')
    [row], report = parse(path, FileType.NDJSON)
    assert row["ts"] is None and "not understood" in report.warnings[0]


def test_estimates_are_close(tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    path.write_text("".join(f'{{"n": {n}}}\n' for n in range(5000)))
    assert 4500 <= estimate_events(path, FileType.NDJSON) <= 5500

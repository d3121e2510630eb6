"""NDJSON / JSON Lines: flattening, EVTX-as-JSON exports, bad lines, memory bounds."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import evtx
import orjson
import pyarrow as pa
import pytest

from casescope.model.enums import FileType
from casescope.parse.files import estimate_events, iter_batches
from casescope.parse.ndjson import read_lines
from casescope.parse.report import ParseReport
from casescope.parse.schema import EVENT_SCHEMA

MiB = 1024 * 1024


def parse(path: Path, **kw: object) -> tuple[list[dict], ParseReport]:
    report = ParseReport()
    batches = list(iter_batches(path, FileType.NDJSON, report, **kw))  # type: ignore[arg-type]
    assert all(batch.schema.equals(EVENT_SCHEMA) for batch in batches)
    rows = pa.Table.from_batches(batches, EVENT_SCHEMA).to_pylist()
    return rows, report


def test_flattening_and_core_columns(tmp_path: Path) -> None:
    path = tmp_path / "edr.jsonl"
    path.write_text(
        '{"@timestamp": "2024-03-01T10:00:00.123Z", "host": {"name": "WS1"}, '
        '"event": {"code": "4688"}, "process": {"args": ["a", "b"], "pid": 42, "ok": true, '
        '"ratio": 0.5, "none": null}}\n'
        "\n"
        '{"timestamp": 1709287200, "Computer": "WS2", "EventID": 1, "x": null}\n'
    )
    rows, report = parse(path)
    assert [r["seq"] for r in rows] == [0, 1]
    first, second = rows
    assert first["ts"] == datetime(2024, 3, 1, 10, 0, 0, 123000, tzinfo=UTC)
    assert (first["computer"], first["event_id"]) == ("WS1", 4688)
    assert dict(first["fields"]) == {
        "@timestamp": "2024-03-01T10:00:00.123Z",
        "host.name": "WS1",
        "event.code": "4688",
        "process.args": '["a","b"]',
        "process.pid": "42",
        "process.ok": "true",
        "process.ratio": "0.5",
    }
    assert second["ts"] == datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    assert (second["computer"], second["event_id"]) == ("WS2", 1)
    assert "x" not in dict(second["fields"])
    assert report.warnings == [] and report.skipped == 0


def test_crate_json_lines_parse_like_the_evtx_file(attack_samples: Path, tmp_path: Path) -> None:
    """EVTX exported as JSON lines (the crate's own JSON) gives the same events as the file."""
    source = sorted(attack_samples.rglob("*Sysmon*.evtx"))[0]
    records = [r["data"] for r in evtx.PyEvtxParser(str(source)).records_json()]
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(records) + "\n")
    rows, report = parse(path)
    evtx_rows = [
        row
        for batch in iter_batches(source, FileType.EVTX, ParseReport())
        for row in batch.to_pylist()
    ]
    assert rows == evtx_rows and report.warnings == []


def test_exporter_shapes(tmp_path: Path) -> None:
    chainsaw = {
        "Event": {
            "System": {
                "Provider_attributes": {"Name": "Service Control Manager"},
                "EventID_attributes": {"Qualifiers": 16384},
                "EventID": 7036,
                "Channel": "System",
                "Computer": "DC1",
                "EventRecordID": 99,
                "TimeCreated_attributes": {"SystemTime": "2024-01-02T03:04:05.000006Z"},
            },
            "EventData": {"param1": "Windows Update", "param2": "running"},
        },
        "Event_attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
    }
    velociraptor = {
        "System": {
            "EventID": {"Value": 4624},
            "Computer": "WS9",
            "Channel": "Security",
            "TimeCreated": {"SystemTime": 1704164645.5},
            "Provider": {"Name": "Microsoft-Windows-Security-Auditing"},
        },
        "EventData": {"TargetUserName": "alice", "LogonType": 3},
    }
    path = tmp_path / "exports.jsonl"
    path.write_bytes(orjson.dumps(chainsaw) + b"\n" + orjson.dumps(velociraptor) + b"\n")
    (first, second), report = parse(path)
    assert (first["event_id"], first["channel"], first["computer"], first["record_id"]) == (
        7036,
        "System",
        "DC1",
        99,
    )
    assert first["provider"] == "Service Control Manager"
    assert first["ts"] == datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert dict(first["fields"]) == {"param1": "Windows Update", "param2": "running"}
    assert (second["event_id"], second["computer"], second["user_name"]) == (4624, "WS9", "alice")
    assert second["provider"] == "Microsoft-Windows-Security-Auditing"
    assert second["ts"] == datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)
    assert dict(second["fields"]) == {"TargetUserName": "alice", "LogonType": "3"}
    assert report.warnings == []


def test_bad_lines_are_reported_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        b'\xef\xbb\xbf{"msg": "one"}\r\n'
        b'{"msg": "caf\xe9 latin-1 byte", "bad": "\xff\xfe"}\n'
        b"this is not json\n"
        b"[1, 2, 3]\n"
        b"   \n"
        b'{"msg": "last", "no newline at end": 1}'
    )
    rows, report = parse(path)
    assert [dict(r["fields"])["msg"] for r in rows] == ["one", "caf\ufffd latin-1 byte", "last"]
    assert rows[0]["raw"] == '{"msg": "one"}'
    assert rows[1]["raw"].startswith('{"msg": "caf\ufffd')
    assert report.warnings == [
        "line 2: invalid UTF-8 replaced with U+FFFD",
        "line 3: not valid JSON, skipped",
        "line 4: a JSON list, not an object, skipped",
    ]
    assert report.skipped == 2


def write_huge_line_file(path: Path, line_bytes: int) -> None:
    with path.open("wb") as out:
        out.write(b'{"n": 1}\n{"blob": "')
        chunk = b"A" * MiB
        for _ in range(line_bytes // MiB):
            out.write(chunk)
        out.write(b'"}\n{"n": 3}\n')


@pytest.mark.parametrize(("limit", "peak_mib"), [(None, 20), (MiB, 4)])
def test_50_mb_line_is_skipped_without_buffering_it(
    tmp_path: Path, limit: int | None, peak_mib: int
) -> None:
    path = tmp_path / "huge.jsonl"
    write_huge_line_file(path, 50 * MiB)
    kw = {} if limit is None else {"max_line_bytes": limit}
    warm_up = tmp_path / "small.jsonl"  # pyarrow's one-time set-up is not the parser's memory
    warm_up.write_text('{"timestamp": "2024-01-01T00:00:00"}\n')
    parse(warm_up)
    tracemalloc.start()
    try:
        rows, report = parse(path, **kw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [dict(r["fields"]).get("n") for r in rows] == ["1", "3"]
    limit_text = "1 MiB" if limit else "16 MiB"
    assert report.warnings == [f"line 2: 52 MB over the {limit_text} line limit, skipped"]
    assert report.skipped == 1
    assert peak < peak_mib * MiB, f"peak {peak / MiB:.1f} MiB for a 50 MiB line"


def test_line_reader_edges(tmp_path: Path) -> None:
    path = tmp_path / "lines"
    path.write_bytes(b"a\n\nbbbbbbbbbb\nccc")
    lines = [(line.number, line.data, line.size) for line in read_lines(path, 5)]
    assert lines == [(1, b"a", 1), (2, b"", 0), (3, None, 10), (4, b"ccc", 3)]
    path.write_bytes(b"x" * 12)
    assert [(line.data, line.size) for line in read_lines(path, 5)] == [(None, 12)]


def test_unparseable_timestamp_is_null_with_one_warning(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"timestamp": "yesterday-ish"}\n{"timestamp": "2024-01-01"}\n')
    rows, report = parse(path)
    assert rows[0]["ts"] is None and rows[1]["ts"] == datetime(2024, 1, 1, tzinfo=UTC)
    assert report.warnings == ["1 timestamp(s) not understood, e.g. 'yesterday-ish'"]


def test_seq_continues_across_batches(tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    path.write_text("".join(f'{{"n": {n}}}\n' for n in range(25)))
    report = ParseReport()
    batches = list(iter_batches(path, FileType.NDJSON, report, batch_size=10))
    assert [b.num_rows for b in batches] == [10, 10, 5]
    assert pa.Table.from_batches(batches).column("seq").to_pylist() == list(range(25))


def test_estimate_is_close(tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    path.write_text("".join(f'{{"n": {n}, "pad": "{"x" * (n % 50)}"}}\n' for n in range(60_000)))
    assert 54_000 <= estimate_events(path, FileType.NDJSON) <= 66_000


def test_estimate_samples_the_whole_file_not_its_start(tmp_path: Path) -> None:
    """Short events first, long ones after (an export sorted by type): reading only the
    first MiB would estimate ~3x too many."""
    short = "".join(f'{{"n": {n}}}\n' for n in range(100_000))
    long = "".join(f'{{"n": {n}, "pad": "{"x" * 100}"}}\n' for n in range(40_000))
    path = tmp_path / "skewed.jsonl"
    path.write_text(short + long)
    assert 112_000 <= estimate_events(path, FileType.NDJSON) <= 168_000  # 140,000 ± 20%


def test_estimate_is_exact_for_small_files(tmp_path: Path) -> None:
    path = tmp_path / "small.jsonl"
    path.write_text('{"a": 1}\n' * 999 + '{"a": 2}')
    assert estimate_events(path, FileType.NDJSON) == 1000

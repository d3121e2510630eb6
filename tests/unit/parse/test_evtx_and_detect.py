"""EVTX normalisation against the real samples, and format detection by content."""

from __future__ import annotations

from pathlib import Path

import evtx
import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casescope.model.enums import FileType
from casescope.parse import ParseReport, detect_file_type, estimate_events, iter_batches
from casescope.parse.evtx_event import normalise_event
from casescope.parse.schema import EVENT_SCHEMA


def test_sample_events_match_the_evtx_crate(attack_samples: Path) -> None:
    samples = sorted(attack_samples.rglob("*.evtx"))[::25]
    for path in samples:
        crate = [r for r in evtx.PyEvtxParser(str(path)).records_json()]
        report = ParseReport()
        table = pa.Table.from_batches(
            list(iter_batches(path, FileType.EVTX, report, batch_size=7)), EVENT_SCHEMA
        )
        assert table.num_rows == len(crate) == estimate_events(path, FileType.EVTX)
        assert table.column("seq").to_pylist() == list(range(len(crate)))
        expected_ids = [orjson.loads(r["data"])["Event"]["System"]["EventRecordID"] for r in crate]
        assert table.column("record_id").to_pylist() == expected_ids
        assert table.column("raw").to_pylist() == [r["data"] for r in crate]
        assert report.skipped == 0


def test_sysmon_event_fields(attack_samples: Path) -> None:
    path = next(p for p in sorted(attack_samples.rglob("*Sysmon*.evtx")))
    rows = next(iter_batches(path, FileType.EVTX, ParseReport())).to_pylist()
    sysmon = [r for r in rows if r["channel"] == "Microsoft-Windows-Sysmon/Operational"]
    assert sysmon and all(r["provider"] == "Microsoft-Windows-Sysmon" for r in sysmon)
    assert all(r["ts"] is not None and r["event_id"] is not None for r in sysmon)
    creations = [dict(r["fields"]) for r in sysmon if r["event_id"] == 1]
    assert all("Image" in f and "CommandLine" in f for f in creations)


def test_qualifiers_userdata_and_unnamed_data() -> None:
    core, fields = normalise_event(
        {
            "System": {
                "EventID": {"#attributes": {"Qualifiers": 16384}, "#text": 7036},
                "Security": {"#attributes": {"UserID": "S-1-5-18"}},
            },
            "UserData": {
                "LogFileCleared": {
                    "#attributes": {"xmlns": "x"},
                    "SubjectUserName": "bob",
                    "Nested": {"A": 1},
                }
            },
        }
    )
    assert core[1] == 7036 and core[8] == "S-1-5-18" and core[7] == "bob"
    assert fields == {"SubjectUserName": "bob", "Nested.A": "1"}
    _, fields = normalise_event({"System": {}, "EventData": {"Data": ["a", "b"]}})
    assert fields == {"Data": '["a","b"]'}
    _, fields = normalise_event({"System": {}, "EventData": {"Data": {"#text": "only"}}})
    assert fields == {"Data": "only"}


def test_corrupt_evtx_keeps_what_can_be_read(attack_samples: Path, tmp_path: Path) -> None:
    source = max(attack_samples.rglob("*.evtx"), key=lambda p: p.stat().st_size)
    data = bytearray(source.read_bytes())
    data[4096 + 65536 + 512 : 4096 + 65536 + 30000] = bytes(range(256)) * 115 + bytes(8)
    broken = tmp_path / "garbage chunk.evtx"
    broken.write_bytes(bytes(data))
    report = ParseReport()
    rows = sum(b.num_rows for b in iter_batches(broken, FileType.EVTX, report))
    full = sum(b.num_rows for b in iter_batches(source, FileType.EVTX, ParseReport()))
    assert 0 < rows < full
    assert report.skipped >= 1 and "unreadable EVTX data" in report.warnings[0]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", FileType.UNKNOWN),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), FileType.UNKNOWN),
        (b"just some prose, nothing else\n", FileType.UNKNOWN),
        (b'\xef\xbb\xbf{"a": 1}\n{"a": 2}\n', FileType.NDJSON),
        (b'{"a": 1}\nnot json\n{"a": 3}\n', FileType.NDJSON),
        (b"a,b,c\n1,2,3\n4,5,6\n", FileType.CSV),
        (b"a\tb\n1\t2\n", FileType.CSV),
    ],
)
def test_detect_by_content(tmp_path: Path, content: bytes, expected: FileType) -> None:
    path = tmp_path / "evidence.evtx"  # the extension must not matter
    path.write_bytes(content)
    assert detect_file_type(path) is expected


def test_detect_evtx(attack_samples: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "log.csv"
    renamed.write_bytes(next(attack_samples.rglob("*.evtx")).read_bytes())
    assert detect_file_type(renamed) is FileType.EVTX


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.binary(max_size=3000),
    kind=st.sampled_from([FileType.NDJSON, FileType.CSV, FileType.EVTX]),
)
def test_random_bytes_never_crash_a_parser(tmp_path: Path, data: bytes, kind: FileType) -> None:
    path = tmp_path / "fuzz"
    prefix = b"ElfFile\x00" if kind is FileType.EVTX else b""
    path.write_bytes(prefix + data)
    report = ParseReport()
    for batch in iter_batches(path, kind, report):
        assert batch.schema.equals(EVENT_SCHEMA)

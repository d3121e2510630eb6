"""EVTX: every attack sample against the `evtx` crate itself, flattening rules, broken files."""

from __future__ import annotations

import random
import shutil
import struct
import time
import zlib
from pathlib import Path

import evtx
import orjson
import pyarrow as pa
import pytest

from casescope.model.enums import FileType
from casescope.parse import evtx as evtx_reader
from casescope.parse.columns import EventColumns
from casescope.parse.evtx import CHUNK_SIZE, FILE_HEADER_SIZE
from casescope.parse.evtx_layout import CHUNK_HEADER_SIZE, chunk_is_intact
from casescope.parse.files import estimate_events, iter_batches
from casescope.parse.report import ParseReport
from casescope.parse.schema import EVENT_SCHEMA
from casescope.parse.winevent import add_event

SAMPLE_RECORDS = 8_255


def crate_count(path: Path) -> int:
    """What the crate itself reads: successes of records_json(), errors passed over."""
    records = evtx.PyEvtxParser(str(path), number_of_threads=1).records_json()
    count = 0
    while True:
        try:
            next(records)
        except StopIteration:
            return count
        except (RuntimeError, OSError, ValueError):
            continue
        count += 1


def parse(path: Path, **kw: object) -> tuple[pa.Table, ParseReport]:
    report = ParseReport()
    batches = list(iter_batches(path, FileType.EVTX, report, **kw))  # type: ignore[arg-type]
    assert all(batch.schema.equals(EVENT_SCHEMA) for batch in batches)
    return pa.Table.from_batches(batches, EVENT_SCHEMA), report


def test_every_sample_matches_the_crate(attack_samples: Path) -> None:
    total = 0
    for path in sorted(attack_samples.rglob("*.evtx")):
        table, report = parse(path)
        expected = crate_count(path)
        assert table.num_rows == expected == estimate_events(path, FileType.EVTX), path
        assert (report.skipped, report.error, report.warnings) == (0, None, []), path
        total += table.num_rows
    assert total == SAMPLE_RECORDS


def test_fast_path_equals_the_general_normaliser(attack_samples: Path) -> None:
    """The one-pass path for the crate's usual shape must agree with `add_event`."""
    for path in sorted(attack_samples.rglob("*.evtx"))[::3]:
        table, _ = parse(path)
        columns = EventColumns(ParseReport())
        for record in evtx.PyEvtxParser(str(path), number_of_threads=1).records_json():
            add_event(columns, orjson.loads(record["data"])["Event"], record["data"])
        if table.num_rows:
            assert pa.Table.from_batches([columns.flush()]).equals(table), path


def test_batches_raw_and_seq(attack_samples: Path) -> None:
    path = max(attack_samples.rglob("*.evtx"), key=lambda p: p.stat().st_size)
    report = ParseReport()
    batches = list(iter_batches(path, FileType.EVTX, report, batch_size=50))
    assert len(batches) > 2 and all(b.num_rows <= 50 for b in batches)
    table = pa.Table.from_batches(batches)
    crate = list(evtx.PyEvtxParser(str(path), number_of_threads=1).records_json())
    assert table.column("seq").to_pylist() == list(range(len(crate)))
    assert table.column("raw").to_pylist() == [r["data"] for r in crate]
    ids = [orjson.loads(r["data"])["Event"]["System"]["EventRecordID"] for r in crate]
    assert table.column("record_id").to_pylist() == ids
    assert table.column("ts").null_count == 0


def test_sysmon_core_columns(attack_samples: Path) -> None:
    path = sorted(attack_samples.rglob("*Sysmon*.evtx"))[0]
    rows = parse(path)[0].to_pylist()
    sysmon = [r for r in rows if r["channel"] == "Microsoft-Windows-Sysmon/Operational"]
    assert sysmon and all(r["provider"] == "Microsoft-Windows-Sysmon" for r in sysmon)
    assert all(r["ts"] is not None and r["event_id"] is not None for r in sysmon)
    assert all(r["user_sid"] == "S-1-5-18" for r in sysmon if r["event_id"] == 1)
    creations = [dict(r["fields"]) for r in sysmon if r["event_id"] == 1]
    assert creations and all("Image" in f and "CommandLine" in f for f in creations)
    assert all(f["ProcessId"].isdigit() for f in creations)  # ints rendered as strings


def one_event(event: dict) -> dict:
    columns = EventColumns(ParseReport())
    add_event(columns, event, orjson.dumps(event).decode())
    return columns.flush().to_pylist()[0]


def test_qualifiers_security_and_userdata_wrapper() -> None:
    row = one_event(
        {
            "System": {
                "EventID": {"#attributes": {"Qualifiers": 16384}, "#text": 7036},
                "Security": {"#attributes": {"UserID": "S-1-5-18"}},
                "TimeCreated": {"#attributes": {"SystemTime": "2024-01-02T03:04:05.000006Z"}},
            },
            "UserData": {
                "LogFileCleared": {
                    "#attributes": {"xmlns": "x", "xmlns:auto-ns3": "y", "Version": "2"},
                    "SubjectUserName": "bob",
                    "Nested": {"A": 1, "B": {"#attributes": {"Unit": "s"}, "#text": "5"}},
                }
            },
        }
    )
    assert (row["event_id"], row["user_sid"], row["user_name"]) == (7036, "S-1-5-18", "bob")
    assert row["ts"].isoformat() == "2024-01-02T03:04:05.000006+00:00"
    assert dict(row["fields"]) == {
        "LogFileCleared.Version": "2",
        "SubjectUserName": "bob",
        "Nested.A": "1",
        "Nested.B": "5",
        "Nested.B.Unit": "s",
    }


@pytest.mark.parametrize(
    ("event_data", "expected"),
    [
        ({"Data": ["a", "C:\\x", None]}, {"Data": "a\nC:\\x\n"}),
        ({"Data": {"#text": "only"}}, {"Data": "only"}),
        ({"Data": {"#text": ["sa", " Reason"]}, "Binary": None}, {"Data": "sa\n Reason"}),
        ([{"#attributes": {"Name": "User"}, "#text": "eve"}, "x"], {"User": "eve", "Data": "x"}),
        ("plain text", {"Data": "plain text"}),
        (None, {}),
        (
            {"#attributes": {"Name": "EVT_X", "xmlns": "n"}, "p": True, "q": 1.5},
            {"EventData.Name": "EVT_X", "p": "true", "q": "1.5"},
        ),
    ],
)
def test_event_data_shapes(event_data: object, expected: dict[str, str]) -> None:
    fields = dict(one_event({"System": {}, "EventData": event_data})["fields"])
    assert fields == expected


def test_other_elements_and_exporter_shapes() -> None:
    row = one_event(
        {  # Chainsaw-style separate attributes, plus ProcessingErrorData
            "System": {
                "Provider_attributes": {"Name": "Microsoft-Windows-WinRM"},
                "TimeCreated_attributes": {"SystemTime": "2019-05-16T01:33:54.567896Z"},
                "EventID": 91,
                "Security_attributes": {"UserID": "S-1-5-21-1"},
            },
            "ProcessingErrorData": {"ErrorCode": 15005, "DataItemName": "shellId"},
        }
    )
    assert (row["provider"], row["event_id"], row["user_sid"]) == (
        "Microsoft-Windows-WinRM",
        91,
        "S-1-5-21-1",
    )
    assert row["ts"] is not None
    assert dict(row["fields"]) == {
        "ProcessingErrorData.ErrorCode": "15005",
        "ProcessingErrorData.DataItemName": "shellId",
    }


def test_out_of_range_numbers_become_null() -> None:
    row = one_event({"System": {"EventID": -1, "Level": 300, "EventRecordID": "x"}})
    assert (row["event_id"], row["level"], row["record_id"]) == (None, None, None)


# --- broken files --------------------------------------------------------------------------


def largest(attack_samples: Path) -> Path:
    return max(attack_samples.rglob("*.evtx"), key=lambda p: (p.stat().st_size, p.name))


def test_truncated_mid_chunk(attack_samples: Path, tmp_path: Path) -> None:
    source = largest(attack_samples)
    data = source.read_bytes()
    declared = struct.unpack_from("<H", data, 42)[0]
    cut = FILE_HEADER_SIZE + CHUNK_SIZE * 2 + 30_000  # inside the third chunk
    broken = tmp_path / "cut & truncated.evtx"
    broken.write_bytes(data[:cut])
    table, report = parse(broken)
    assert report.error == f"truncated EVTX: stopped at chunk 3 of {declared}"
    assert 0 < table.num_rows == crate_count(broken) < crate_count(source)


def test_garbage_chunk_keeps_the_rest(attack_samples: Path, tmp_path: Path) -> None:
    source = largest(attack_samples)
    data = bytearray(source.read_bytes())
    start = FILE_HEADER_SIZE + CHUNK_SIZE
    data[start : start + CHUNK_SIZE] = random.Random(7).randbytes(CHUNK_SIZE)
    broken = tmp_path / "garbage chunk.evtx"
    broken.write_bytes(bytes(data))
    table, report = parse(broken)
    assert 0 < table.num_rows == crate_count(broken) < crate_count(source)
    assert report.skipped >= 1 and report.error is None
    assert report.warnings[0].startswith("unreadable EVTX data: Failed to parse chunk")
    # the crate cannot say how many records the chunk held; the record numbers can
    lost = crate_count(source) - table.num_rows
    assert report.warnings[-1].startswith(f"record number gaps: {lost:,} records missing in 1 ")


def _gaps_of(*runs: list[int]) -> evtx_reader.RecordGaps:
    """Numbers noted as `evtx._records` notes them."""
    gaps, expected = evtx_reader.RecordGaps(), None
    for number in (n for run in runs for n in run):
        if number != expected:
            gaps.note(expected, number)
        expected = number + 1
    return gaps


def test_record_number_gaps_are_counted() -> None:
    gaps = _gaps_of([1, 2, 3], [5, 6], [10, 11])
    assert (gaps.missing, gaps.ranges, gaps.first) == (4, 2, (4, 4))
    report = ParseReport()
    gaps.report_to(report)
    assert report.warnings == [
        "record number gaps: 4 records missing in 2 range(s), the first 4: deleted from the "
        "log, or in chunks that could not be read"
    ]


def test_a_wrapped_log_has_no_gaps() -> None:
    """A circular log that wrapped holds its newest chunks first: the numbers go back once."""
    gaps = _gaps_of([5000, 5001, 5002], [1000, 1001, 1002])
    assert gaps.missing == 0 and gaps.first is None


def test_a_log_saved_from_a_filtered_view_has_no_gaps(attack_samples: Path) -> None:
    """Its headers are numbered anew; its XML keeps the original EventRecordIDs (6,575-6,595
    then 6,622: 26 records filtered out, none lost)."""
    name = "DE_timestomp_and_dll_sideloading_and_RunPersist.evtx"
    table, report = parse(next(attack_samples.rglob(name)))
    numbers = table.column("record_id").to_pylist()
    assert numbers[21] - numbers[20] == 27
    assert report.warnings == []


def test_records_deleted_from_a_log_are_reported(attack_samples: Path, tmp_path: Path) -> None:
    """A log cleaner that cuts records out leaves their numbers missing, with the chunk's
    checksums made valid again. Simulated on the first record of the second chunk: its
    header numbered 5 higher, the chunk's checksums recomputed."""
    source = largest(attack_samples)
    data = bytearray(source.read_bytes())
    chunk = FILE_HEADER_SIZE + CHUNK_SIZE
    record = chunk + CHUNK_HEADER_SIZE
    assert data[record : record + 4] == b"\x2a\x2a\x00\x00"  # record magic
    number = struct.unpack_from("<Q", data, record + 8)[0]
    struct.pack_into("<Q", data, record + 8, number + 5)
    free = struct.unpack_from("<I", data, chunk + 48)[0]
    struct.pack_into("<I", data, chunk + 52, zlib.crc32(data[record : chunk + free]))
    header_crc = zlib.crc32(data[chunk + 128 : record], zlib.crc32(data[chunk : chunk + 120]))
    struct.pack_into("<I", data, chunk + 124, header_crc)
    assert chunk_is_intact(bytes(data[chunk : chunk + CHUNK_SIZE]))
    edited = tmp_path / "edited.evtx"
    edited.write_bytes(bytes(data))
    table, report = parse(edited)
    assert table.num_rows == crate_count(source)  # nothing unreadable: only the numbering
    assert any(w.startswith("record number gaps: 5 records missing in 1 ") for w in report.warnings)


def test_an_altered_file_header_is_reported_and_the_chunks_still_read(
    attack_samples: Path, tmp_path: Path
) -> None:
    source = largest(attack_samples)
    data = bytearray(source.read_bytes())
    data[100] ^= 0xFF  # unused bytes that its checksum covers
    edited = tmp_path / "edited header.evtx"
    edited.write_bytes(bytes(data))
    table, report = parse(edited)
    assert table.num_rows == crate_count(source) and report.error is None
    assert report.warnings == [
        "the EVTX file header's checksum does not match: the header was altered or damaged "
        "(each chunk is still checked on its own)"
    ]


def test_checksum_mismatch_is_read_anyway_in_order(attack_samples: Path, tmp_path: Path) -> None:
    """One flipped bit fails the chunk's checksum; the salvage still reads all of it."""
    source = largest(attack_samples)
    data = bytearray(source.read_bytes())
    data[FILE_HEADER_SIZE + CHUNK_SIZE + 9000] ^= 0x01
    broken = tmp_path / "bit flip.evtx"
    broken.write_bytes(bytes(data))
    table, report = parse(broken)
    expected, _ = parse(source)
    assert table.column("record_id").equals(expected.column("record_id"))  # same order
    assert table.num_rows == crate_count(broken)
    assert report.skipped == 0 and report.error is None
    assert len(report.warnings) == 1
    assert report.warnings[0].startswith("chunk 1: checksum mismatch;")


def test_a_chunk_the_crate_stalls_on_does_not_hang_the_parse(
    attack_samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One byte that makes the crate loop forever (found by fuzzing evtx 0.14): the main
    read rejects the chunk by checksum, the salvage child is stopped after its time limit."""
    monkeypatch.setattr(evtx_reader, "SALVAGE_TIMEOUT_S", 2.0)
    name = "Exec_via_cpl_Application_Experience_EventID_17_ControlPanelApplet.evtx"
    data = bytearray(next(attack_samples.rglob(name)).read_bytes())
    data[4925] = 0xAC
    broken = tmp_path / "stall.evtx"
    broken.write_bytes(bytes(data))
    started = time.monotonic()
    table, report = parse(broken)
    assert time.monotonic() - started < 10
    assert table.num_rows == 0 and report.skipped == 1
    assert "the evtx crate stalled on it and was stopped after 2 s" in report.warnings[0]


@pytest.mark.parametrize(
    "content",
    [b"ElfFile\x00", b"ElfFile\x00" + bytes(5000), b"ElfFile\x00" + b"\xff" * 4088 + b"junk"],
)
def test_headers_only_or_junk(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "junk.evtx"
    path.write_bytes(content)
    table, report = parse(path)
    assert table.num_rows == 0
    assert report.error is None or report.error.startswith(("not a readable", "truncated"))


def test_zero_byte_file_is_an_error_not_an_exception(tmp_path: Path) -> None:
    path = tmp_path / "empty.evtx"
    path.touch()
    table, report = parse(path)
    assert table.num_rows == 0 and report.error and "not a readable EVTX file" in report.error
    assert estimate_events(path, FileType.EVTX) == 0


def test_names_with_spaces_and_ampersands(attack_samples: Path, tmp_path: Path) -> None:
    source = next(p for p in sorted(attack_samples.rglob("*.evtx")) if " " in p.name)
    target = tmp_path / "a & b" / "c & d.evtx"
    target.parent.mkdir()
    shutil.copyfile(source, target)
    assert parse(target)[0].num_rows == crate_count(source)

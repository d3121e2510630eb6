"""Laws for every parser: whatever the bytes, the result is valid batches of EVENT_SCHEMA
(seq continuous from 0) plus a report, never another exception and never a hang."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casescope.model.enums import FileType
from casescope.parse import evtx as evtx_reader
from casescope.parse.files import iter_batches
from casescope.parse.report import ParseReport
from casescope.parse.schema import EVENT_SCHEMA

PARSE_TIMEOUT_S = 20
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def parse_bounded(path: Path, kind: FileType) -> tuple[int, ParseReport]:
    """Parse in a thread so that a hang fails the test instead of blocking the suite."""
    report = ParseReport()
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            batches = list(iter_batches(path, kind, report, batch_size=3, max_line_bytes=4096))
            outcome["batches"] = batches
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread below
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(PARSE_TIMEOUT_S)
    assert not worker.is_alive(), f"{kind} parser still running after {PARSE_TIMEOUT_S} s"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    batches: list[pa.RecordBatch] = outcome["batches"]  # type: ignore[assignment]
    for batch in batches:
        assert batch.schema.equals(EVENT_SCHEMA)
        assert 0 < batch.num_rows <= 3
    seq = pa.Table.from_batches(batches, EVENT_SCHEMA).column("seq").to_pylist()
    assert seq == list(range(len(seq)))
    assert report.error is None or report.error.strip()
    return len(seq), report


@FUZZ
@given(
    data=st.binary(max_size=5000),
    kind=st.sampled_from([FileType.NDJSON, FileType.CSV, FileType.EVTX]),
)
def test_random_bytes(tmp_path: Path, data: bytes, kind: FileType) -> None:
    path = tmp_path / "fuzz"
    path.write_bytes((b"ElfFile\x00" if kind is FileType.EVTX else b"") + data)
    parse_bounded(path, kind)


text_lines = st.lists(
    st.one_of(
        st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60),
        st.sampled_from(['{"a": 1}', '{"Event": {"System": 1}}', "[]", '"x"', "a,b", '"']),
    ),
    max_size=30,
)


@FUZZ
@given(lines=text_lines, kind=st.sampled_from([FileType.NDJSON, FileType.CSV]))
def test_random_text_lines(tmp_path: Path, lines: list[str], kind: FileType) -> None:
    path = tmp_path / "fuzz.txt"
    path.write_bytes("\n".join(lines).encode("utf-8", errors="replace"))
    parse_bounded(path, kind)


@pytest.fixture(scope="module")
def small_evtx(attack_samples: Path) -> bytes:
    path = min(attack_samples.rglob("*.evtx"), key=lambda p: (p.stat().st_size, p.name))
    return path.read_bytes()


@settings(FUZZ, max_examples=40)
@given(
    flips=st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 255)), max_size=40),
    cut=st.one_of(st.none(), st.integers(0, 2**20)),
)
def test_damaged_real_evtx(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    small_evtx: bytes,
    flips: list[tuple[int, int]],
    cut: int | None,
) -> None:
    monkeypatch.setattr(evtx_reader, "SALVAGE_TIMEOUT_S", 2.0)  # a stalled chunk costs this
    data = bytearray(small_evtx)
    for offset, value in flips:
        data[offset % len(data)] = value
    path = tmp_path / "damaged.evtx"
    path.write_bytes(bytes(data[:cut] if cut is not None else data))
    parse_bounded(path, FileType.EVTX)


def test_report_keeps_the_first_warnings_and_counts_all() -> None:
    report = ParseReport()
    for number in range(60):
        report.warn(f"line {number}: bad")
    assert report.warning_count == 60
    assert report.warnings[:50] == [f"line {n}: bad" for n in range(50)]
    assert len(report.warnings) == 51  # plus one note that the rest were not kept

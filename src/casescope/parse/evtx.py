"""Windows EVTX files via the `evtx` crate (Rust), streamed: one batch in memory at a time.

Per record the Python work is one `orjson.loads` and one flat pass over System and
EventData/UserData straight into the batch's columns (`winevent.crate_adder`); timestamps
are parsed per batch in Arrow. Throughput: `bench/parse.py` (docs/benchmarks.md).

Damaged files never stop the parse and never hang it:

- chunk checksums are validated, because the crate can loop forever (holding the GIL) on
  some damaged chunks; a chunk that fails its checksum is re-read without validation in a
  child process with a time limit (`evtx_salvage`), so what it still holds is kept, in order;
- any other chunk or record the crate cannot read is counted in `report.skipped` (the
  chunk's record range when the crate names it, else 1) with the crate's message;
- a file shorter than its header's chunk count says is reported as `report.error`
  ("truncated EVTX: stopped at chunk 3 of 5"): the crate silently drops a cut last chunk;
  a file header whose checksum fails is a warning;
- after `MAX_ERRORS` errors the file is given up with an error;
- record numbers that skip ahead (record 1,204 then 1,210) are reported as one warning
  with the count of missing records (`RecordGaps`): records deleted from the log (a known
  anti-forensics trace) or lost in chunks that could not be read. A healthy log, wrapped or
  not, has none: its numbers only go back at the wrap.
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import evtx
import orjson
import pyarrow as pa

from casescope.parse.columns import EventColumns
from casescope.parse.evtx_layout import (
    CHUNK_SIZE,
    FILE_HEADER_SIZE,
    FILE_MAGIC,
    chunk_record_range,
    file_header_is_intact,
)
from casescope.parse.evtx_salvage import DEFAULT_TIMEOUT_S, salvage_chunk
from casescope.parse.evtx_slices import ChunkRangeView, Slice
from casescope.parse.report import ParseReport
from casescope.parse.winevent import add_event, crate_adder

logger = logging.getLogger(__name__)

MAX_ERRORS = 10_000  # a file this broken is not worth reading further
MAX_SALVAGED_CHUNKS = 64  # child processes per file, at most
SALVAGE_TIMEOUT_S = DEFAULT_TIMEOUT_S
_RECORD_RANGE = re.compile(r"record IDs (\d+)\.\.(\d+)")
_BAD_CHECKSUM = re.compile(r"chunk number (\d+): .*(?:CRC32|checksum)", re.IGNORECASE)


class RecordGaps:
    """Where the record numbers of a file skip ahead, in file order.

    The numbers are the records' own headers', not the EventRecordID of their XML: a log
    saved from a filtered view renumbers its headers 1, 2, 3 ... and keeps the XML's original
    numbers, whose gaps are the records filtered out, not lost ones.
    """

    def __init__(self) -> None:
        self.ranges = 0
        self.missing = 0
        self.first: tuple[int, int] | None = None  # the first missing range

    def note(self, expected: int | None, number: int) -> None:
        """Record `number` read where `expected` was due (None: no number was due). The
        caller calls this only when they differ: it runs once per record."""
        if expected is None or number <= expected:
            return
        self.ranges += 1
        self.missing += number - expected
        if self.first is None:
            self.first = (expected, number - 1)

    def report_to(self, report: ParseReport) -> None:
        if self.first is None:
            return
        low, high = self.first
        first = f"{low:,}" if low == high else f"{low:,}-{high:,}"
        report.warn(
            f"record number gaps: {self.missing:,} records missing in {self.ranges:,} "
            f"range(s), the first {first}: deleted from the log, or in chunks that could "
            "not be read"
        )


def iter_evtx(
    path: Path, report: ParseReport, batch_size: int, part: Slice | None = None
) -> Iterator[pa.RecordBatch]:
    """Batches of EVENT_SCHEMA from an EVTX file, or from the chunks of one `part` of it
    (numbered from its `seq_from`: `evtx_slices`); unreadable chunks and gaps in the record
    numbers go into `report`."""
    if part is None:
        _check_header(path, report)
    gaps = RecordGaps()
    first_seq = part.seq_from if part else 0
    yield from _batches(_records(path, report, gaps, part), report, batch_size, first_seq)
    gaps.report_to(report)


def _batches(
    records: Iterator[str], report: ParseReport, batch_size: int, first_seq: int = 0
) -> Iterator[pa.RecordBatch]:
    columns = EventColumns(report)
    columns.next_seq = first_seq
    add_fast, rows = crate_adder(columns), columns.raw
    loads = orjson.loads
    for raw in records:
        try:
            event = loads(raw)["Event"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            event = exc
        if type(event) is not dict:
            report.skipped += 1
            report.warn("a record without an event in the crate's JSON, skipped")
            logger.debug("record without an event: %s (%.200s)", event, raw)
            continue
        if columns.full_before(len(raw)):
            yield columns.flush()
        if not add_fast(event, raw):
            add_event(columns, event, raw)
        columns.raw_chars += len(raw)
        if len(rows) >= batch_size:
            yield columns.flush()
    if len(columns):
        yield columns.flush()


def _open_parser(path: Path, part: Slice | None) -> evtx.PyEvtxParser:
    source: str | ChunkRangeView = str(path)
    if part is not None:
        source = ChunkRangeView(path, part.chunk_from, part.chunk_to)
    return evtx.PyEvtxParser(source, number_of_threads=1, validate_checksums=True)


def _records(
    path: Path, report: ParseReport, gaps: RecordGaps, part: Slice | None = None
) -> Iterator[str]:
    """The crate's JSON records in file order, salvaged chunks included."""
    try:
        records = _open_parser(path, part).records_json()
    except (OSError, RuntimeError, ValueError) as exc:
        report.error = f"not a readable EVTX file: {exc}"
        return
    chunk_base = part.chunk_from if part else 0  # the crate numbers the view's chunks
    errors = salvaged = 0
    expected: int | None = None  # the record number due next
    while True:
        try:
            for record in records:  # resumes after an error: the crate goes on
                number = record["event_record_id"]
                if number != expected:
                    gaps.note(expected, number)
                expected = number + 1
                yield record["data"]
            return
        except (RuntimeError, OSError, ValueError) as exc:
            errors += 1
            bad_checksum = _BAD_CHECKSUM.search(str(exc))
            if bad_checksum and salvaged < MAX_SALVAGED_CHUNKS:
                salvaged += 1
                yield from _salvage(path, chunk_base + int(bad_checksum[1]), report)
                expected = None  # its records were read without their numbers
            else:
                _record_error(report, str(exc))
            if errors >= MAX_ERRORS:
                report.error = f"stopped after {errors:,} unreadable chunks/records"
                return


def _salvage(path: Path, chunk: int, report: ParseReport) -> Iterator[str]:
    result = salvage_chunk(path, chunk, SALVAGE_TIMEOUT_S)
    for message in result.errors:
        _record_error(report, message)
    read = len(result.records)
    if result.timed_out:
        report.skipped += 1  # at least one record; how many is unknown
        report.warn(
            f"chunk {chunk}: checksum mismatch; the evtx crate stalled on it and was stopped "
            f"after {SALVAGE_TIMEOUT_S:g} s, {read} records read before that"
        )
    else:
        report.warn(f"chunk {chunk}: checksum mismatch; {read} records read anyway")
    yield from result.records


def _record_error(report: ParseReport, message: str) -> None:
    """Count what the crate could not read; a chunk error names its record range."""
    found = _RECORD_RANGE.search(message)
    lost = int(found[2]) - int(found[1]) + 1 if found else 1
    report.skipped += lost if 0 < lost < CHUNK_SIZE else 1
    report.warn(f"unreadable EVTX data: {message}")
    logger.debug("evtx error in a file: %s", message)


def _check_header(path: Path, report: ParseReport) -> None:
    """What the file header says that the crate does not: a file shorter than its chunk
    count is truncated (the crate silently drops a cut final chunk), and a header whose
    checksum fails was altered or damaged (the crate reads on; its chunks are checked alone)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        header = handle.read(128)
    if len(header) < 128 or not header.startswith(FILE_MAGIC):
        return
    if not file_header_is_intact(header):
        report.warn(
            "the EVTX file header's checksum does not match: the header was altered or "
            "damaged (each chunk is still checked on its own)"
        )
    declared = struct.unpack_from("<H", header, 42)[0]
    whole, partial = divmod(max(size - FILE_HEADER_SIZE, 0), CHUNK_SIZE)
    if whole < declared:
        report.error = f"truncated EVTX: stopped at chunk {whole + 1} of {declared}"
    elif partial:
        report.warn(f"EVTX file ends with {partial:,} bytes that are not a whole chunk")


def estimate_evtx(path: Path) -> int:
    """Sum of each chunk header's record-number range: exact for healthy files, cheap."""
    total = 0
    with path.open("rb") as handle:
        offset = FILE_HEADER_SIZE
        while True:
            handle.seek(offset)
            header = handle.read(24)
            if len(header) < 24:
                break
            if found := chunk_record_range(header):
                total += found[1] - found[0] + 1
            offset += CHUNK_SIZE
    return total

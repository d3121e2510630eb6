"""Windows EVTX files via the `evtx` crate (Rust): one record at a time, never the whole file.

The crate raises for a chunk it cannot read (corrupt, truncated, garbage) and then carries
on with the next chunk; each such error is counted and kept as a warning. Per-record Python
work is one `orjson.loads` and a flat walk of System/EventData/UserData.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from pathlib import Path

import evtx
import orjson
import pyarrow as pa

from casescope.parse.batch import Event, to_batches
from casescope.parse.evtx_event import normalise_event
from casescope.parse.report import ParseReport

logger = logging.getLogger(__name__)

FILE_HEADER_SIZE = 4096
CHUNK_SIZE = 65536
CHUNK_MAGIC = b"ElfChnk\x00"
MAX_ERRORS = 10_000  # a file this broken is not worth reading further


def _records(path: Path, report: ParseReport) -> Iterator[dict]:
    try:
        records = evtx.PyEvtxParser(str(path), number_of_threads=1).records_json()
    except (OSError, RuntimeError, ValueError) as exc:
        report.error = f"not a readable EVTX file: {exc}"
        return
    errors = 0
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except (RuntimeError, OSError, ValueError) as exc:
            errors += 1
            report.skip(f"unreadable EVTX data: {exc}")
            if errors >= MAX_ERRORS:
                report.error = f"stopped after {errors} unreadable chunks/records"
                return
            continue
        yield record


def iter_evtx(path: Path, report: ParseReport, batch_size: int) -> Iterator[pa.RecordBatch]:
    return to_batches(_events(path, report), batch_size)


def _events(path: Path, report: ParseReport) -> Iterator[Event]:
    for record in _records(path, report):
        raw = record["data"]
        try:
            event = orjson.loads(raw).get("Event") or {}
        except (orjson.JSONDecodeError, AttributeError) as exc:
            report.skip(f"record {record.get('event_record_id')}: bad JSON from evtx: {exc}")
            continue
        core, fields = normalise_event(event, record.get("timestamp"))
        yield core, fields, raw


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
            if header[:8] == CHUNK_MAGIC:
                first, last = struct.unpack_from("<QQ", header, 8)
                if last >= first and last - first < 1_000_000:
                    total += last - first + 1
            offset += CHUNK_SIZE
    return total

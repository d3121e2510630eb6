"""NDJSON / JSON Lines, streamed in binary: one JSON object per line.

- A line longer than `max_line_bytes` is skipped without ever being held whole: the reader
  drops its bytes up to the next newline and reports the line's number and size.
- A line over 1 MiB (`columns.EVENT_CHARS`) is kept to its first MiB of raw record and of
  field values, with a warning; batches are cut by bytes as well as by events.
- Invalid UTF-8 is replaced (U+FFFD) and the event kept, with a warning.
- A line that is not JSON, or JSON that is not an object, is skipped with a warning.
- Blank lines are ignored; a UTF-8 BOM on the first line and a trailing CR are dropped.
- A file starting with a UTF-16 or UTF-32 BOM (LE or BE) is transcoded to UTF-8 as it streams
  (`sniff.utf8_chunks`); line sizes and limits then count UTF-8 bytes.
- EVTX exported as JSON (Hayabusa/Chainsaw/Velociraptor: `Event.System…`, or `System…` beside
  `EventData`/`UserData` at the top) is normalised exactly like EVTX (`evtx.add_event`);
  anything else is flattened and its core columns found by the rules in `fieldmap`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson
import pyarrow as pa

from casescope.parse.columns import (
    EVENT_CHARS,
    EventColumns,
    capped_warning,
)
from casescope.parse.fieldmap import Overrides, add_flat, flatten
from casescope.parse.report import ParseReport
from casescope.parse.sniff import READ_SIZE, utf8_chunks
from casescope.parse.winevent import add_event

logger = logging.getLogger(__name__)

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 1-based
    data: bytes | None  # None when the line was over the limit
    size: int  # bytes, without the newline


def read_lines(path: Path, max_line_bytes: int) -> Iterator[Line]:
    """Lines of a file in binary; an over-long line is dropped as it streams past, so at
    most `max_line_bytes` of one line (plus one read) is ever held."""
    number = 0
    pieces: list[bytes] = []  # the current line so far, when it spans reads
    held = 0  # bytes in `pieces`
    dropped = 0  # bytes dropped so far from the current over-long line
    with path.open("rb") as handle:
        for chunk in utf8_chunks(handle, READ_SIZE):
            start = 0
            while (end := chunk.find(b"\n", start)) != -1:
                number += 1
                size = dropped + held + end - start
                if dropped or size > max_line_bytes:
                    yield Line(number, None, size)
                elif pieces:
                    pieces.append(chunk[start:end])
                    yield Line(number, b"".join(pieces), size)
                else:
                    yield Line(number, chunk[start:end], size)
                pieces.clear()
                held = dropped = 0
                start = end + 1
            rest = len(chunk) - start
            if dropped or held + rest > max_line_bytes:
                dropped += held + rest
                pieces.clear()
                held = 0
            elif rest:
                pieces.append(chunk[start:])
                held += rest
    if held or dropped:
        yield Line(number + 1, b"".join(pieces) if not dropped else None, dropped + held)


def iter_ndjson(
    path: Path, report: ParseReport, batch_size: int, max_line_bytes: int, overrides: Overrides
) -> Iterator[pa.RecordBatch]:
    """Batches of EVENT_SCHEMA from a JSON Lines file; bad lines go into `report`."""
    columns = EventColumns(report)
    for line in read_lines(path, max_line_bytes):
        if line.data is None:
            report.skipped += 1
            report.warn(
                f"line {line.number}: {_size(line.size)} over the "
                f"{_size(max_line_bytes)} line limit, skipped"
            )
            continue
        parsed = _decode(line, report)
        if parsed is None:
            continue
        obj, raw = parsed
        kept = min(line.size, EVENT_CHARS)  # bytes of the line the batch will hold, about
        if columns.full_before(kept):
            yield columns.flush()
        event = _evtx_shaped(obj)
        if event is not None:
            add_event(columns, event, raw)
        else:
            add_flat(columns, flatten(obj, {}), raw, overrides)
        if line.size > EVENT_CHARS and columns.cap_last():
            report.warn(f"line {line.number}: {capped_warning(line.size)}")
        columns.raw_chars += kept
        if len(columns) >= batch_size:
            yield columns.flush()
    if len(columns):
        yield columns.flush()


def _decode(line: Line, report: ParseReport) -> tuple[dict, str] | None:
    """The line's object and its text, or None (blank, or skipped with a warning)."""
    data = line.data or b""
    if line.number == 1:
        data = data.removeprefix(BOM)
    data = data.removesuffix(b"\r")
    if not data.strip():
        return None
    try:
        obj, raw = orjson.loads(data), None
    except orjson.JSONDecodeError:
        obj, raw = _decode_replacing(line.number, data, report)
        if raw is None:
            return None
    if type(obj) is not dict:
        report.skipped += 1
        report.warn(f"line {line.number}: a JSON {_json_kind(obj)}, not an object, skipped")
        return None
    return obj, raw if raw is not None else data.decode()


def _decode_replacing(number: int, data: bytes, report: ParseReport) -> tuple[object, str | None]:
    """Second try for a line orjson refused: with invalid UTF-8 replaced by U+FFFD."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
        else:
            report.warn(f"line {number}: invalid UTF-8 replaced with U+FFFD")
            return obj, text
    report.skipped += 1
    report.warn(f"line {number}: not valid JSON, skipped")
    return None, None


def _evtx_shaped(obj: Mapping[str, object]) -> Mapping[str, object] | None:
    event = obj.get("Event")
    if type(event) is dict and type(event.get("System")) is dict:
        return event
    if type(obj.get("System")) is dict and ("EventData" in obj or "UserData" in obj):
        return obj
    return None


def _json_kind(value: object) -> str:
    names = {list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _size(size: int) -> str:
    """52 MB, 16 MiB, 900 bytes: how big a line is, in words."""
    if size >= 1 << 20 and size % (1 << 20) == 0:
        return f"{size >> 20} MiB"
    if size >= 1_000_000:
        return f"{size / 1_000_000:.0f} MB"
    if size >= 10_000:
        return f"{size / 1_000:.0f} kB"
    return f"{size:,} bytes"

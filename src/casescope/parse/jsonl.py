"""NDJSON / JSON Lines, streamed: one JSON object per line.

Invalid UTF-8 is replaced (U+FFFD) and the event kept, with a warning; a line that is not a
JSON object is skipped with a warning; an over-long line is skipped without being buffered.
EVTX exported as JSON (`Event.System…`, or `System…` at the top) is normalised like EVTX.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import orjson
import pyarrow as pa

from casescope.parse.batch import Event, to_batches
from casescope.parse.evtx_event import normalise_event
from casescope.parse.fields import flatten
from casescope.parse.generic import normalise_flat
from casescope.parse.lines import read_lines
from casescope.parse.report import ParseReport

BOM = b"\xef\xbb\xbf"


def _decode(number: int, data: bytes, report: ParseReport) -> object | None:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            value = orjson.loads(data.decode("utf-8", errors="replace"))
        except orjson.JSONDecodeError:
            report.skip(f"line {number}: not valid JSON (and not valid UTF-8), skipped")
            return None
        report.warn(f"line {number}: invalid UTF-8 replaced with U+FFFD")
        return value
    report.skip(f"line {number}: not valid JSON, skipped")
    return None


def _evtx_shaped(obj: Mapping[str, object]) -> Mapping[str, object] | None:
    event = obj.get("Event")
    if isinstance(event, dict) and isinstance(event.get("System"), dict):
        return event
    if isinstance(obj.get("System"), dict) and ("EventData" in obj or "UserData" in obj):
        return obj
    return None


def iter_jsonl(
    path: Path,
    report: ParseReport,
    batch_size: int,
    max_line_bytes: int,
    overrides: tuple[tuple[str, str], ...],
) -> Iterator[pa.RecordBatch]:
    return to_batches(_events(path, report, max_line_bytes, overrides), batch_size)


def _events(
    path: Path, report: ParseReport, max_line_bytes: int, overrides: tuple[tuple[str, str], ...]
) -> Iterator[Event]:
    for line in read_lines(path, max_line_bytes):
        if line.data is None:
            report.skip(
                f"line {line.number}: {line.size:,} bytes is over the "
                f"{max_line_bytes:,}-byte line limit, skipped"
            )
            continue
        data = line.data.removeprefix(BOM) if line.number == 1 else line.data
        if not data.strip():
            continue
        obj = _decode(line.number, data, report)
        if obj is None:
            continue
        if not isinstance(obj, dict):
            report.skip(f"line {line.number}: a JSON {type(obj).__name__}, not an object")
            continue
        raw = data.decode("utf-8", errors="replace")
        event = _evtx_shaped(obj)
        if event is not None:
            core, fields = normalise_event(event)
        else:
            core, fields = normalise_flat(flatten(obj, {}), overrides, report, line.number)
        yield core, fields, raw

"""Evidence parsers: every format becomes Arrow batches of one schema (`parse.schema`).

iter_batches(path, file_type, report, batch_size=..., field_map=..., max_line_bytes=...)
estimate_events(path, file_type)
detect_file_type(path)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pyarrow as pa

from casescope.model.enums import FileType
from casescope.parse.delimited import iter_csv
from casescope.parse.detect import detect_file_type
from casescope.parse.evtx_reader import estimate_evtx, iter_evtx
from casescope.parse.jsonl import iter_jsonl
from casescope.parse.report import ParseReport

__all__ = ["ParseReport", "detect_file_type", "estimate_events", "iter_batches"]

DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024
_SAMPLE = 1024 * 1024


def iter_batches(
    path: Path,
    file_type: FileType,
    report: ParseReport,
    *,
    batch_size: int = 10_000,
    field_map: Mapping[str, str] | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[pa.RecordBatch]:
    """Stream a file as batches of EVENT_SCHEMA; problems go into `report`."""
    overrides = tuple(sorted((field_map or {}).items()))
    if file_type is FileType.EVTX:
        return iter_evtx(path, report, batch_size)
    if file_type is FileType.NDJSON:
        return iter_jsonl(path, report, batch_size, max_line_bytes, overrides)
    if file_type is FileType.CSV:
        return iter_csv(path, report, batch_size, max_line_bytes, overrides)
    raise ValueError(f"cannot parse a file of type {file_type}")


def estimate_events(path: Path, file_type: FileType) -> int:
    """A cheap estimate of a file's event count, for progress bars."""
    if file_type is FileType.EVTX:
        return estimate_evtx(path)
    size = path.stat().st_size
    with path.open("rb") as handle:
        sample = handle.read(_SAMPLE)
    lines = sample.count(b"\n") or 1
    return max(1, round(lines * size / max(len(sample), 1)) - (file_type is FileType.CSV))

"""CSV logs (comma, semicolon, tab or pipe separated), streamed with the csv module.

- The first row is the header: names are trimmed, a blank name becomes `column_N`, a repeated
  one gets `_2`, `_3`…; cells beyond the header become `_extra_0`, `_extra_1`…; empty rows
  are skipped; a row the csv module cannot read is skipped with a warning.
- Encoding: UTF-16 or UTF-32 (LE or BE) when the file starts with their BOM, streamed by
  the codec; else UTF-8 (a BOM is allowed) when the first 64 KiB decode as UTF-8, otherwise
  Windows-1252 with a warning. Bytes that do not decode are replaced (U+FFFD) and counted in
  one warning.
- Fields up to `max_line_bytes` are read (`csv.field_size_limit`); a physical line longer
  than that is skipped without being held whole.
- `raw` is the row as a JSON object; core columns are found by the rules in `fieldmap`. A
  row whose `raw` is over 1 MiB (`columns.EVENT_CHARS`) is kept to its first MiB of raw
  record and of field values, with a warning.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pyarrow as pa

from casescope.parse.columns import (
    EVENT_CHARS,
    EventColumns,
    capped_warning,
)
from casescope.parse.fieldmap import Overrides, add_flat
from casescope.parse.report import ParseReport
from casescope.parse.sniff import SAMPLE_BYTES, sniff_dialect, sniff_encoding

logger = logging.getLogger(__name__)

_REPLACE = "casescope-count-replace"
_counter = threading.local()


def _count_and_replace(exc: UnicodeError) -> tuple[str, int]:
    """Codec error handler: like "replace", and count how often it was needed."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    _counter.value = getattr(_counter, "value", 0) + 1
    return "\ufffd", exc.end


codecs.register_error(_REPLACE, _count_and_replace)


def iter_csv(
    path: Path, report: ParseReport, batch_size: int, max_line_bytes: int, overrides: Overrides
) -> Iterator[pa.RecordBatch]:
    """Batches of EVENT_SCHEMA from a delimited text file; bad rows go into `report`."""
    csv.field_size_limit(max_line_bytes)  # process-wide: the last parse started sets it
    with path.open("rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
    encoding = sniff_encoding(sample)
    if encoding == "cp1252":
        report.warn(f"not valid UTF-8: read as {encoding}")
    dialect = sniff_dialect(sample.decode(encoding, errors="replace"))
    _counter.value = 0
    columns = EventColumns(report)
    with path.open("r", encoding=encoding, errors=_REPLACE, newline="") as text:
        reader = csv.reader(_bounded_lines(text, max_line_bytes, report), dialect)
        header = _header(next(reader, None) or [])
        for number, record in _records(reader, header, report):
            raw = orjson.dumps(record).decode()
            kept = min(len(raw), EVENT_CHARS)
            if columns.full_before(kept):
                yield columns.flush()
            add_flat(columns, record, raw, overrides)
            if len(raw) > EVENT_CHARS and columns.cap_last():
                report.warn(f"row {number}: {capped_warning(len(raw))}")
            columns.raw_chars += kept
            if len(columns) >= batch_size:
                yield columns.flush()
    if len(columns):
        yield columns.flush()
    if _counter.value:
        report.warn(f"{_counter.value} undecodable byte sequence(s) replaced with U+FFFD")


def _bounded_lines(text: io.TextIOBase, limit: int, report: ParseReport) -> Iterator[str]:
    """Physical lines (newlines kept, as csv wants them), each at most `limit` characters."""
    number = 0
    while line := text.readline(limit + 1):
        number += 1
        if len(line) <= limit or line.endswith(("\n", "\r")):
            yield line
            continue
        size = len(line)
        while (more := text.readline(limit + 1)) and not more.endswith(("\n", "\r")):
            size += len(more)  # drop the rest of the over-long line as it streams past
        size += len(more)
        report.skipped += 1
        report.warn(f"line {number}: {size:,} characters, over the line limit, skipped")


def _header(names: list[str]) -> list[str]:
    header: list[str] = []
    seen: set[str] = set()
    for number, name in enumerate(names):
        name = name.strip() or f"column_{number}"
        unique, copy = name, 1
        while unique in seen:
            copy += 1
            unique = f"{name}_{copy}"
        seen.add(unique)
        header.append(unique)
    return header


def _records(
    reader: Iterator[list[str]], header: list[str], report: ParseReport
) -> Iterator[tuple[int, dict[str, str]]]:
    """(row number, the row as a record), the header being row 1."""
    row_number = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            report.skipped += 1
            report.warn(f"row {row_number + 1}: {exc}, skipped")
            row_number += 1
            continue
        row_number += 1
        if not any(row):
            continue
        record = dict(zip(header, row, strict=False))
        for extra, value in enumerate(row[len(header) :]):
            record[f"_extra_{extra}"] = value
        yield row_number, record

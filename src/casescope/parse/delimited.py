"""CSV (and semicolon/tab/pipe separated) logs, streamed with the csv module.

The first row is the header. UTF-8 (with or without BOM) is expected; a file that is not
valid UTF-8 is read as cp1252 with a warning. Rows longer than the header keep their extra
cells as `_extra_N`; a row the csv module cannot read is skipped with a warning.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import orjson
import pyarrow as pa

from casescope.parse.batch import Event, to_batches
from casescope.parse.generic import normalise_flat
from casescope.parse.report import ParseReport

SAMPLE_BYTES = 64 * 1024
DELIMITERS = ",;\t|"


def sniff_encoding(sample: bytes) -> str:
    """utf-8-sig when the sample decodes as UTF-8 (a cut final character allowed)."""
    for trim in range(4):
        try:
            sample[: len(sample) - trim].decode("utf-8")
            return "utf-8-sig"
        except UnicodeDecodeError:
            continue
    return "cp1252"


class _Dialect(csv.excel):
    pass


def sniff_dialect(text: str) -> type[csv.Dialect]:
    """The delimiter is the candidate the header line uses most (comma on a tie)."""
    header = text.split("\n", 1)[0]
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: (counts[d], d == ","))
    dialect = type("Sniffed", (_Dialect,), {"delimiter": best if counts[best] else ","})
    return dialect


def _open(path: Path, report: ParseReport) -> tuple[io.TextIOWrapper, csv.Dialect]:
    with path.open("rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
    encoding = sniff_encoding(sample)
    if encoding == "cp1252":
        report.warn("not valid UTF-8: read as Windows-1252 (cp1252)")
    text = sample.decode(encoding, errors="replace")
    dialect = sniff_dialect(text)
    handle = path.open("r", encoding=encoding, errors="replace", newline="")
    return handle, dialect  # type: ignore[return-value]


def _rows(reader: Iterator[list[str]], report: ParseReport) -> Iterator[tuple[int, list[str]]]:
    number = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            number += 1
            report.skip(f"row {number}: {exc}, skipped")
            continue
        number += 1
        yield number, row


def _record(header: list[str], row: list[str]) -> dict[str, str]:
    record = dict(zip(header, row, strict=False))
    for extra, value in enumerate(row[len(header) :]):
        record[f"_extra_{extra}"] = value
    return record


def iter_csv(
    path: Path,
    report: ParseReport,
    batch_size: int,
    max_line_bytes: int,
    overrides: tuple[tuple[str, str], ...],
) -> Iterator[pa.RecordBatch]:
    csv.field_size_limit(max_line_bytes)
    return to_batches(_events(path, report, overrides), batch_size)


def _events(
    path: Path, report: ParseReport, overrides: tuple[tuple[str, str], ...]
) -> Iterator[Event]:
    handle, dialect = _open(path, report)
    with handle:
        reader = csv.reader(handle, dialect)
        header = next(reader, None)
        if not header:
            return
        header = [name.strip() or f"column_{i}" for i, name in enumerate(header)]
        for number, row in _rows(reader, report):
            if not any(row):
                continue
            record = _record(header, row)
            core, fields = normalise_flat(record, overrides, report, number)
            yield core, fields, orjson.dumps(record).decode()

"""Tell the evidence format from a file's first bytes (never from its name)."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson

from casescope.model.enums import FileType
from casescope.parse.delimited import sniff_dialect, sniff_encoding

SAMPLE_BYTES = 64 * 1024
EVTX_MAGIC = b"ElfFile\x00"
BOM = b"\xef\xbb\xbf"


def _looks_like_ndjson(sample: bytes, complete: bool) -> bool:
    lines = [line for line in sample.split(b"\n") if line.strip()]
    if not lines or not lines[0].lstrip().startswith(b"{"):
        return False
    if len(lines) == 1 and not complete:
        return True  # one huge first line that starts like an object
    whole = (lines if complete else lines[:-1])[:20]  # the last line may be cut by the sample
    objects = sum(_is_object(line) for line in whole)
    return objects >= 1 and objects * 2 >= len(whole)  # a few bad lines are the parser's job


def _is_object(line: bytes) -> bool:
    try:
        return isinstance(orjson.loads(line.decode("utf-8", errors="replace")), dict)
    except orjson.JSONDecodeError:
        return False


def _looks_like_csv(sample: bytes, complete: bool) -> bool:
    if b"\x00" in sample:
        return False
    text = sample.decode(sniff_encoding(sample), errors="replace")
    lines = text.splitlines()
    if not complete and len(lines) > 1:
        lines = lines[:-1]
    if len(lines) < 2:  # a header and at least one row
        return False
    dialect = sniff_dialect("\n".join(lines))
    rows = list(csv.reader(lines[:20], dialect))
    width = len(rows[0])
    if width < 2 or not all(cell.strip() for cell in rows[0]):
        return False
    data_rows = [row for row in rows[1:] if row]
    return bool(data_rows) and all(len(row) >= width for row in data_rows)


def detect_file_type(path: Path) -> FileType:
    with path.open("rb") as handle:
        sample = handle.read(SAMPLE_BYTES + 1)
    complete = len(sample) <= SAMPLE_BYTES
    sample = sample[:SAMPLE_BYTES]
    if sample.startswith(EVTX_MAGIC):
        return FileType.EVTX
    sample = sample.removeprefix(BOM)
    if not sample.strip():
        return FileType.UNKNOWN
    if _looks_like_ndjson(sample, complete):
        return FileType.NDJSON
    if _looks_like_csv(sample, complete):
        return FileType.CSV
    return FileType.UNKNOWN

"""Tell the evidence format from a file's first 64 KiB (never from its name).

- EVTX: the `ElfFile\\0` magic.
- Text encoding: a UTF-16 or UTF-32 byte order mark (LE or BE) means that encoding; the
  sample is decoded and judged as text like a UTF-8 one (the readers transcode the file as
  they stream it, `utf8_chunks`). A UTF-8 BOM is dropped. Without a BOM, text is UTF-8 (or
  Windows-1252 for CSV, `sniff_encoding`).
- NDJSON / JSON Lines: after an optional BOM, the first non-empty line starts with `{`
  and at least half of the first 20 complete lines are JSON objects (a few bad lines are
  the parser's business); a first line longer than the sample only has to start with `{"`.
- CSV: no NUL bytes; a header of at least two distinct, non-empty names and at least one
  row; the delimiter (comma, semicolon, tab or pipe) is found by `csv.Sniffer` on the first
  lines (by the header's most frequent candidate when the sniffer gives up); at least 80 %
  of the sampled rows are exactly as wide as the header.
- Anything else, a zero-byte file included, is UNKNOWN: the caller decides what that means.
"""

from __future__ import annotations

import codecs
import csv
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import orjson

from casescope.model.enums import FileType

logger = logging.getLogger(__name__)

SAMPLE_BYTES = 64 * 1024
EVTX_MAGIC = b"ElfFile\x00"
BOM = b"\xef\xbb\xbf"
#: Byte order marks and the codec that reads past them (UTF-32 first: its LE mark starts
#: with UTF-16's).
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
    (BOM, "utf-8-sig"),
)
#: Encodings whose files are transcoded to UTF-8 as they are read.
WIDE_ENCODINGS = ("utf-16", "utf-32")
READ_SIZE = 1024 * 1024
DELIMITERS = ",;\t|"
_SNIFF_CHARS = 16 * 1024  # csv.Sniffer is regex based: keep its input small
_SAMPLE_LINES = 20


def detect_file_type(path: Path) -> FileType:
    """EVTX, NDJSON, CSV or UNKNOWN, from at most the first 64 KiB of the file."""
    with path.open("rb") as handle:
        return file_type_of(handle.read(SAMPLE_BYTES + 1))


def file_type_of(sample: bytes) -> FileType:
    """`detect_file_type` of a file whose first bytes are `sample`: its first
    SAMPLE_BYTES + 1 bytes, or all of it when it is shorter (intake keeps them as it copies,
    so that it does not open the copy again)."""
    complete = len(sample) <= SAMPLE_BYTES  # the whole file is in the sample
    sample = sample[:SAMPLE_BYTES]
    if sample.startswith(EVTX_MAGIC):
        return FileType.EVTX
    encoding = bom_encoding(sample)
    if encoding in WIDE_ENCODINGS:
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        sample = decoder.decode(sample, final=complete).encode("utf-8")
    sample = sample.removeprefix(BOM)
    if not sample.strip() or b"\x00" in sample:
        return FileType.UNKNOWN
    if _looks_like_ndjson(sample, complete):
        return FileType.NDJSON
    if _looks_like_csv(sample, complete):
        return FileType.CSV
    return FileType.UNKNOWN


def _looks_like_ndjson(sample: bytes, complete: bool) -> bool:
    lines = [line.strip() for line in sample.split(b"\n")]
    if not complete:
        lines = lines[:-1]  # the last line may be cut by the sample
    lines = [line for line in lines if line]
    if not lines:
        return not complete and sample.lstrip().startswith(b'{"')  # one huge first line
    if not lines[0].startswith(b"{"):
        return False
    head = lines[:_SAMPLE_LINES]
    objects = sum(_is_object(line) for line in head)
    return objects >= 1 and objects * 2 >= len(head)


def _is_object(line: bytes) -> bool:
    try:
        return type(orjson.loads(line.decode("utf-8", errors="replace"))) is dict
    except orjson.JSONDecodeError:
        return False


def _looks_like_csv(sample: bytes, complete: bool) -> bool:
    text = sample.decode(sniff_encoding(sample), errors="replace")
    if not complete:
        text = text[: text.rfind("\n") + 1]  # drop the cut last line
    dialect = sniff_dialect(text)
    try:
        rows = [row for row in csv.reader(text.splitlines()[:_SAMPLE_LINES], dialect) if row]
    except csv.Error:
        return False
    if len(rows) < 2:
        return False
    header = [name.strip() for name in rows[0]]
    if len(header) < 2 or not all(header) or len(set(header)) < len(header):
        return False
    same_width = sum(len(row) == len(header) for row in rows[1:])
    return same_width >= 0.8 * (len(rows) - 1)


def bom_encoding(sample: bytes) -> str | None:
    """The codec named by the sample's byte order mark (`utf-16`, `utf-32`, `utf-8-sig`)."""
    return next((name for mark, name in BOMS if sample.startswith(mark)), None)


def utf8_chunks(handle: BinaryIO, size: int = READ_SIZE) -> Iterator[bytes]:
    """A binary file's bytes as UTF-8, in chunks of about `size` bytes read: UTF-16/32 (by
    their BOM) are transcoded as they stream (BOM dropped, bad code units as U+FFFD); any
    other file is passed through as it is."""
    chunk = handle.read(max(size, 4))  # a whole BOM, however small the chunks
    encoding = bom_encoding(chunk)
    if encoding not in WIDE_ENCODINGS:
        while chunk:
            yield chunk
            chunk = handle.read(size)
        return
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    while chunk:
        yield decoder.decode(chunk).encode("utf-8")
        chunk = handle.read(size)
    yield decoder.decode(b"", final=True).encode("utf-8")


def sniff_encoding(sample: bytes) -> str:
    """The codec of the sample's BOM if any; else `utf-8-sig` when the sample is UTF-8 (a
    character cut at its end allowed), else cp1252."""
    encoding = bom_encoding(sample)
    if encoding is not None:
        return encoding
    for trim in range(4):
        try:
            sample[: len(sample) - trim].decode("utf-8")
            return "utf-8-sig"
        except UnicodeDecodeError:
            continue
    return "cp1252"


class _Dialect(csv.excel):
    """Comma separated, double quotes, doubled to escape (what the Sniffer refines)."""


def sniff_dialect(text: str) -> type[csv.Dialect]:
    """The delimiter and quoting of a delimited text sample."""
    head = text[:_SNIFF_CHARS]
    head = head[: head.rfind("\n") + 1] or head
    try:
        sniffed = csv.Sniffer().sniff(head, delimiters=DELIMITERS)
    except csv.Error:
        sniffed = None
    header = text.split("\n", 1)[0]
    if sniffed is not None and sniffed.delimiter in header:
        delimiter = sniffed.delimiter
    else:
        counts = {d: header.count(d) for d in DELIMITERS}
        delimiter = max(DELIMITERS, key=lambda d: (counts[d], d == ","))
    return type("SniffedDialect", (_Dialect,), {"delimiter": delimiter})

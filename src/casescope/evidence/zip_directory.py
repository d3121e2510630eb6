"""A zip's central directory, measured before `zipfile.ZipFile` reads it.

`zipfile.ZipFile` reads the whole central directory into memory and makes an object of every
entry in it: millions of entries are gigabytes, whatever the archive's bounds say about them
afterwards. So an archive is measured first, with a few reads and no entry kept:

- `central_directory`: the number of entries and the size of the directory that the end
  records declare (the end-of-central-directory record and, when present, the ZIP64 one);
- `count_entries`: the entries the directory really holds, walked header by header the way
  `zipfile` reads them (it trusts the declared size, not the declared count), stopping one
  past the bound.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

#: End of central directory: signature, disk numbers, entries (this disk, total), directory
#: size and offset, comment length (APPNOTE.TXT 4.3.16).
_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIG = b"PK\x05\x06"
#: ZIP64 end of central directory locator (4.3.15): signature, disk, record offset, disks.
_LOCATOR = struct.Struct("<4sLQL")
_LOCATOR_SIG = b"PK\x06\x07"
#: ZIP64 end of central directory record (4.3.14), without its extensible data.
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_EOCD64_SIG = b"PK\x06\x06"
#: A central directory header (4.3.12): fixed part, then name, extra field and comment.
_HEADER = struct.Struct("<4s4B4HL2L5H2L")
_HEADER_SIG = b"PK\x01\x02"
_MAX_COMMENT = 0xFFFF


@dataclass(frozen=True)
class CentralDirectory:
    """What the end records declare: the most entries and bytes any of them names, and
    where `zipfile` will read the directory from (`start`, `size`)."""

    entries: int
    size: int
    start: int
    read_size: int


def _eocd(f: BinaryIO, file_size: int) -> tuple[int, tuple[int, ...]] | None:
    """The position and fields of the last end-of-central-directory record, as `zipfile`
    finds it (in the last 22 bytes, or further back past a comment)."""
    tail = min(file_size, _EOCD.size + _MAX_COMMENT)
    f.seek(file_size - tail)
    data = f.read(tail)
    at = data.rfind(_EOCD_SIG)
    if at < 0 or at + _EOCD.size > len(data):
        return None
    return file_size - tail + at, _EOCD.unpack_from(data, at)


def _eocd64(f: BinaryIO, offset: int) -> tuple[int, int] | None:
    """(entries, directory size) of a ZIP64 end record at `offset`, if one is there."""
    if offset < 0:
        return None
    f.seek(offset)
    data = f.read(_EOCD64.size)
    if len(data) != _EOCD64.size or data[:4] != _EOCD64_SIG:
        return None
    fields = _EOCD64.unpack(data)
    return max(fields[6], fields[7]), fields[8]


def central_directory(f: BinaryIO) -> CentralDirectory | None:
    """The central directory declared by the end records of the zip open as `f`; None when
    there is no end record (`zipfile` then refuses the file itself)."""
    file_size = f.seek(0, 2)
    found = _eocd(f, file_size)
    if found is None:
        return None
    position, fields = found
    entries, size = max(fields[3], fields[4]), fields[5]
    end, read_size = position, size  # `zipfile` reads `size` bytes ending where this starts
    locator_at = position - _LOCATOR.size
    if locator_at >= 0:
        f.seek(locator_at)
        locator = f.read(_LOCATOR.size)
        if locator[:4] == _LOCATOR_SIG:
            record_offset = _LOCATOR.unpack(locator)[2]
            before = locator_at - _EOCD64.size  # where `zipfile` reads the ZIP64 record
            adjacent = _eocd64(f, before)
            for record in (adjacent, _eocd64(f, record_offset)):
                if record is not None:
                    entries, size = max(entries, record[0]), max(size, record[1])
            if adjacent is not None:
                end, read_size = before, adjacent[1]
    return CentralDirectory(entries, size, end - read_size, read_size)


def count_entries(f: BinaryIO, directory: CentralDirectory, most: int) -> int:
    """The entries in `directory`, read header by header as `zipfile` reads them (nothing
    kept), and at most `most + 1`: one more says "too many". A header that `zipfile` would
    find damaged ends the count (it refuses the archive itself)."""
    if directory.start < 0:
        return 0
    count = total = 0
    while total < directory.read_size and count <= most:
        f.seek(directory.start + total)
        header = f.read(_HEADER.size)
        if len(header) != _HEADER.size or header[:4] != _HEADER_SIG:
            break
        fields = _HEADER.unpack(header)
        total += _HEADER.size + fields[12] + fields[13] + fields[14]
        count += 1
    return count

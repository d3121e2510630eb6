"""The case evidence store: bytes are hashed while copied and kept under their sha256.

A stored file's name is its digest (``evidence/<case>/<sha[:2]>/<sha>``), so no name taken
from the evidence — a file name, a zip member's path — can ever choose where bytes land.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple

from casescope.errors import DISK_FULL_ERRNOS, EvidenceError
from casescope.model.enums import FileType
from casescope.parse.sniff import SAMPLE_BYTES, file_type_of

CHUNK = 1024 * 1024
_parts = itertools.count()


@dataclass(frozen=True)
class StoredFile:
    """A file (or zip member) copied into the store; `original` is how the user names it."""

    original: str
    stored: Path
    sha256: str
    size: int
    file_type: FileType
    #: of a file of no known format, its first SAMPLE_BYTES + 1 bytes (all of it when it is
    #: smaller), kept from the copy; empty otherwise
    head: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Refused:
    """An input that was not taken in, and why (reported and audited, never dropped)."""

    path: str
    reason: str


class SizeLimitExceeded(EvidenceError):
    """A copy went past the byte budget it was given."""


def tmp_part(tmp_dir: Path) -> Path:
    """A fresh temporary path in `tmp_dir` for a copy in progress."""
    return tmp_dir / f"intake-{os.getpid()}-{next(_parts)}.part"


class Copied(NamedTuple):
    """What `copy_hashing` learnt of the bytes it copied."""

    sha256: str
    size: int
    head: bytes  # the first SAMPLE_BYTES + 1 bytes (all of them when fewer): for `publish`


def copy_hashing(src: BinaryIO, tmp: Path, limit: int | None = None) -> Copied:
    """Copy `src` to `tmp` in chunks, keeping its digest and first bytes. Past `limit`
    bytes: raise. On any error the partial copy is removed.
    """
    digest = hashlib.sha256()
    size = 0
    head = b""
    # one reused buffer: a fresh 1 MiB bytes object per read is a page-faulting mmap each
    buffer = memoryview(bytearray(CHUNK))
    try:
        # unbuffered: the chunks are already large, and a buffered open asks the file
        # whether it is a terminal (an ioctl per file, bench/bulk.py)
        with tmp.open("wb", buffering=0) as dst:
            while read := src.readinto(buffer):
                chunk = buffer[:read]
                size += read
                if limit is not None and size > limit:
                    raise SizeLimitExceeded(f"more than {limit:,} bytes")
                digest.update(chunk)
                if len(head) <= SAMPLE_BYTES:  # one copy, from the first read of most files
                    head += bytes(chunk[: SAMPLE_BYTES + 1 - len(head)])
                while chunk:
                    chunk = chunk[dst.write(chunk) :]
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Copied(digest.hexdigest(), size, head)


def publish(tmp: Path, copied: Copied, case_dir: Path, original: str) -> StoredFile:
    """Move a finished copy to its content-addressed path (or drop it if already there);
    its format is told from the bytes kept while copying, without opening it again."""
    final = case_dir / copied.sha256[:2] / copied.sha256
    if final.exists():
        tmp.unlink()
    else:
        try:
            tmp.replace(final)
        except FileNotFoundError:  # the first file of this digest prefix in the case
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp.replace(final)
    file_type = file_type_of(copied.head) if copied.size else FileType.UNKNOWN
    # the first bytes stay only with a file of no known format (intake tells a blank one
    # from them): 64 KiB kept for each of a batch's 200 files cost page faults by the 10,000
    head = copied.head if file_type is FileType.UNKNOWN else b""
    return StoredFile(original, final, copied.sha256, copied.size, file_type, head)


def store_stream(src: BinaryIO, original: str, case_dir: Path, tmp_dir: Path) -> StoredFile:
    """Copy an open file into the case store under its sha256 (a name that cannot escape);
    `original` is how the user names it."""
    tmp = tmp_part(tmp_dir)
    return publish(tmp, copy_hashing(src, tmp), case_dir, original)


def sha256_of(path: Path) -> str:
    """The sha256 of a stored file, read again (hashlib drops the GIL while it hashes)."""
    with path.open("rb") as stored:
        return hashlib.file_digest(stored, "sha256").hexdigest()


def describe_os_error(exc: OSError, doing: str) -> str:
    """A clear message for an I/O failure; a full disk says so and says what to do."""
    if exc.errno in DISK_FULL_ERRNOS:
        return (
            f"cannot store: disk full or file size limit reached ({exc.strerror}); "
            "free space and take the file in again"
        )
    return f"cannot {doing}: {exc}"

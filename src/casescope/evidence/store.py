"""The case evidence store: bytes are hashed while copied and kept under their sha256.

A stored file's name is its digest (``evidence/<case>/<sha[:2]>/<sha>``), so no name taken
from the evidence — a file name, a zip member's path — can ever choose where bytes land.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from casescope.errors import DISK_FULL_ERRNOS, EvidenceError
from casescope.model.enums import FileType
from casescope.parse.sniff import detect_file_type

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


def copy_hashing(src: BinaryIO, tmp: Path, limit: int | None = None) -> tuple[str, int]:
    """Copy `src` to `tmp` in chunks; returns (sha256, size). Past `limit` bytes: raise.

    On any error the partial copy is removed.
    """
    digest = hashlib.sha256()
    size = 0
    # one reused buffer: a fresh 1 MiB bytes object per read is a page-faulting mmap each
    buffer = memoryview(bytearray(CHUNK))
    try:
        with tmp.open("wb") as dst:
            while read := src.readinto(buffer):
                chunk = buffer[:read]
                size += read
                if limit is not None and size > limit:
                    raise SizeLimitExceeded(f"more than {limit:,} bytes")
                digest.update(chunk)
                dst.write(chunk)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return digest.hexdigest(), size


def publish(tmp: Path, sha: str, size: int, case_dir: Path, original: str) -> StoredFile:
    """Move a finished copy to its content-addressed path (or drop it if already there)."""
    final = case_dir / sha[:2] / sha
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        tmp.unlink()
    else:
        tmp.replace(final)
    file_type = detect_file_type(final) if size else FileType.UNKNOWN
    return StoredFile(original, final, sha, size, file_type)


def store_file(source: Path, case_dir: Path, tmp_dir: Path) -> StoredFile:
    """Copy `source` into the case store under its sha256 (a name that cannot escape)."""
    tmp = tmp_part(tmp_dir)
    with source.open("rb") as src:
        sha, size = copy_hashing(src, tmp)
    return publish(tmp, sha, size, case_dir, str(source.resolve()))


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

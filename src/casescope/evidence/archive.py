"""Zip archives (nested too) streamed member by member into the evidence store.

Nothing is extracted by name: each member is decompressed straight into a temporary part
file while hashed, then moved to its content-addressed path (`evidence.store`), exactly like
a loose file. A member that is itself a zip is walked from its temporary copy.

Refused, each with a reason that ends up in the intake report and the audit log:
members whose path is absolute, has a drive letter or UNC prefix or a `..` component;
symlink members; encrypted members; members above the compression-ratio bound; and
archives that declare more bytes or members than the bounds in `config.py`
(``CASESCOPE_MAX_ARCHIVE_*``), or nest deeper. The number of members (folder entries
included) is checked before `zipfile` reads the central directory, from the end records and a
walk of the directory's headers (`zip_directory`): a forged archive of millions of entries
costs no memory. A corrupt member is refused alone: the rest of the archive is still taken
in. A member is named ``archive.zip!inner/path`` (nested:
``a.zip!b.zip!x.evtx``).
"""

from __future__ import annotations

import re
import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from casescope.config import Settings
from casescope.evidence.store import (
    Refused,
    SizeLimitExceeded,
    StoredFile,
    copy_hashing,
    describe_os_error,
    publish,
    tmp_part,
)
from casescope.evidence.zip_directory import central_directory, count_entries

#: A zip archive's first bytes, how one is recognised (never by its name): a local file header;
#: an empty archive
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
RATIO_MIN_BYTES = 1024 * 1024  # small members are never refused for their ratio
_DRIVE = re.compile(r"^[A-Za-z]:")
#: What reading a damaged, encrypted or exotic member raises (stdlib zipfile, zlib, bz2, lzma).
MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError)


@dataclass(frozen=True)
class ArchiveLimits:
    max_bytes: int
    max_members: int
    max_depth: int
    max_ratio: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ArchiveLimits:
        return cls(
            settings.max_archive_bytes,
            settings.max_archive_members,
            settings.max_archive_depth,
            settings.max_archive_ratio,
        )


@dataclass
class _Walk:
    """One top-level archive's walk: where bytes go, and what is left of its budget."""

    case_dir: Path
    tmp_dir: Path
    limits: ArchiveLimits
    bytes_left: int
    members_left: int


def unsafe_name(name: str) -> str | None:
    """Why a member's path would escape an extraction folder, or None if it would not."""
    path = name.replace("\\", "/")
    if "\x00" in path:
        return "a NUL character in its path"
    if path.startswith("//"):
        return "a UNC path"
    if path.startswith("/"):
        return "an absolute path"
    if _DRIVE.match(path):
        return "a drive-letter path"
    if ".." in path.split("/"):
        return "a '..' component in its path"
    return None


def member_problem(info: zipfile.ZipInfo, limits: ArchiveLimits) -> str | None:
    """Why a member is refused before a byte of it is read, or None."""
    unsafe = unsafe_name(info.filename)
    if unsafe:
        return f"unsafe member refused: {unsafe}"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symlink member refused (links are never followed or stored)"
    if info.flag_bits & 0x1:
        return "encrypted (password-protected) member: cannot be read"
    if info.file_size > RATIO_MIN_BYTES:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_ratio:
            return (
                f"zip bomb refused: compression ratio {ratio:,.0f}:1 is above "
                f"CASESCOPE_MAX_ARCHIVE_RATIO ({limits.max_ratio}:1)"
            )
    return None


def store_archive(
    path: Path, label: str, case_dir: Path, tmp_dir: Path, limits: ArchiveLimits
) -> Iterator[StoredFile | Refused]:
    """Every member of the zip at `path` (recursively), stored or refused with a reason."""
    walk = _Walk(case_dir, tmp_dir, limits, limits.max_bytes, limits.max_members)
    yield from _walk_archive(walk, path, label, depth=1)


def _budget_problem(walk: _Walk, members: list[zipfile.ZipInfo]) -> str | None:
    declared = sum(m.file_size for m in members)
    if len(members) > walk.members_left:
        return _members_problem(walk, len(members), "holds")
    if declared > walk.bytes_left:
        return (
            f"zip bomb refused: expands to {declared:,} bytes, more than "
            f"CASESCOPE_MAX_ARCHIVE_BYTES allows ({walk.limits.max_bytes:,} in all)"
        )
    return None


def _members_problem(walk: _Walk, count: int, what: str) -> str:
    return (
        f"zip bomb refused: {what} {count:,} members, more than "
        f"CASESCOPE_MAX_ARCHIVE_MEMBERS allows ({walk.limits.max_members:,} in all)"
    )


def _directory_problem(walk: _Walk, path: Path) -> str | None:
    """Why the archive is refused before its central directory is read, or None: it
    declares, or holds, more entries than are left of the members bound."""
    with path.open("rb") as f:
        directory = central_directory(f)
        if directory is None:
            return None  # not a zip after all: `zipfile` says so
        if directory.entries > walk.members_left:
            return _members_problem(walk, directory.entries, "declares")
        if count_entries(f, directory, walk.members_left) > walk.members_left:
            return _members_problem(walk, walk.members_left, "holds more than")
    return None


def _walk_archive(
    walk: _Walk, path: Path, label: str, depth: int
) -> Iterator[StoredFile | Refused]:
    problem = _directory_problem(walk, path)
    if problem:
        yield Refused(label, problem)
        return
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        yield Refused(label, f"not a readable zip archive: {exc}")
        return
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        problem = _budget_problem(walk, members) or ("" if members else "empty archive: no files")
        if problem:
            yield Refused(label, problem)
            return
        walk.members_left -= len(members)
        for info in members:
            yield from _take_member(walk, archive, info, f"{label}!{info.filename}", depth)


def _take_member(
    walk: _Walk, archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str, depth: int
) -> Iterator[StoredFile | Refused]:
    problem = member_problem(info, walk.limits)
    if problem:
        yield Refused(label, problem)
        return
    tmp = tmp_part(walk.tmp_dir)
    try:
        with archive.open(info) as src:
            copied = copy_hashing(src, tmp, limit=walk.bytes_left)
    except SizeLimitExceeded:
        yield Refused(label, "zip bomb refused: expands past CASESCOPE_MAX_ARCHIVE_BYTES")
        return
    except MEMBER_ERRORS as exc:
        yield Refused(label, f"damaged or unreadable member: {exc}")
        return
    except OSError as exc:
        yield Refused(label, describe_os_error(exc, "read member"))
        return
    walk.bytes_left -= copied.size
    if copied.head[:4] not in ZIP_MAGICS:
        yield publish(tmp, copied, walk.case_dir, label)
        return
    try:
        if depth >= walk.limits.max_depth:
            yield Refused(
                label,
                f"nested archive refused: deeper than CASESCOPE_MAX_ARCHIVE_DEPTH "
                f"({walk.limits.max_depth})",
            )
        else:
            yield from _walk_archive(walk, tmp, label, depth + 1)
    finally:
        tmp.unlink(missing_ok=True)
        walk.bytes_left += copied.size  # the nested zip itself is temporary; its members count

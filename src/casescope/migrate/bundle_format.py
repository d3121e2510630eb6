"""The case bundle's zip: a manifest naming every member with its size and sha256, and
the bundle's own checksum over that list (docs/bundles.md).

Reading is verification: a bundle is refused before a byte of it is used when it is not a
readable zip, declares more members than CASESCOPE_MAX_ARCHIVE_MEMBERS, lacks a manifest,
comes from a newer casescope (format version or schema revision), has a manifest whose
checksum does not match its member list, holds a member the manifest does not name or
lacks one it names, or has a member with an unsafe path, a symlink, encryption or a
compression ratio of a zip bomb (the evidence intake's rules, `evidence.archive`). Each
member is then extracted while hashed, never past its declared size, and one whose size or
sha256 differs from the manifest is refused by name.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from casescope import __version__
from casescope.evidence.archive import MEMBER_ERRORS, ArchiveLimits, member_problem
from casescope.evidence.zip_directory import central_directory, count_entries
from casescope.migrate.endpoints import MigrationError, known_revisions

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = "casescope-case-bundle"
#: The bundle layout this casescope writes and the newest it reads.
FORMAT_VERSION = 1
#: Members live under this folder of the zip: the bundle's home.
HOME = "home"
CHUNK = 1 << 20


class BundleError(MigrationError):
    """A case bundle that cannot be read or does not match its manifest."""


@dataclass(frozen=True)
class Member:
    path: str  # in the zip, e.g. "home/casescope.db"
    size: int
    sha256: str

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class Manifest:
    case: str
    schema_revision: tuple[str, ...]
    members: tuple[Member, ...]
    format_version: int = FORMAT_VERSION
    casescope_version: str = __version__
    created_at: str = ""

    @property
    def checksum(self) -> str:
        return members_checksum(self.members)

    def to_json(self) -> bytes:
        document = {
            "format": FORMAT,
            "format_version": self.format_version,
            "casescope_version": self.casescope_version,
            "schema_revision": list(self.schema_revision),
            "case": self.case,
            "created_at": self.created_at or datetime.now(UTC).isoformat(),
            "members": [member.as_json() for member in self.members],
            "checksum": self.checksum,
        }
        return orjson.dumps(document, option=orjson.OPT_INDENT_2)


def members_checksum(members: tuple[Member, ...]) -> str:
    """sha256 over the member list in path order, as canonical JSON."""
    listed = sorted((member.as_json() for member in members), key=lambda m: m["path"])
    return hashlib.sha256(orjson.dumps(listed, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_bundle(home: Path, case: str, revisions: frozenset[str], output: Path) -> Manifest:
    """Zip every file under `home` with its manifest into `output` (written whole: a
    temporary name in the same folder, then renamed)."""
    files = sorted(path for path in home.rglob("*") if path.is_file())
    members = tuple(
        Member(f"{HOME}/{path.relative_to(home).as_posix()}", path.stat().st_size, _sha256(path))
        for path in files
    )
    manifest = Manifest(case, tuple(sorted(revisions)), members)
    output.parent.mkdir(parents=True, exist_ok=True)
    part = output.with_name(f".{output.name}.part")
    with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        archive.writestr(MANIFEST, manifest.to_json())
        for path, member in zip(files, members, strict=True):
            archive.write(path, member.path)
    part.replace(output)
    return manifest


def _open_zip(path: Path, limits: ArchiveLimits) -> zipfile.ZipFile:
    if not path.is_file():
        raise BundleError(f"{path}: no such file")
    with path.open("rb") as handle:
        directory = central_directory(handle)
        if directory is not None and (
            directory.entries > limits.max_members
            or count_entries(handle, directory, limits.max_members) > limits.max_members
        ):
            raise BundleError(
                f"{path}: declares more members than CASESCOPE_MAX_ARCHIVE_MEMBERS allows "
                f"({limits.max_members:,})"
            )
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise BundleError(f"{path}: not a case bundle (not a readable zip: {exc})") from None


def _field(document: dict, name: str, kind: type) -> Any:
    value = document.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BundleError(f"the bundle's manifest has no valid {name!r}")
    return value


def _member(item: object) -> Member:
    if not isinstance(item, dict):
        raise BundleError("the bundle's manifest lists a member that is not an object")
    return Member(_field(item, "path", str), _field(item, "size", int), _field(item, "sha256", str))


def _check_newer(document: dict) -> None:
    version = _field(document, "format_version", int)
    made_by = document.get("casescope_version", "?")
    if version > FORMAT_VERSION:
        raise BundleError(
            f"the bundle is of format version {version}, made by casescope {made_by}: this "
            f"casescope reads up to version {FORMAT_VERSION}; import it with a newer casescope"
        )
    revisions = _field(document, "schema_revision", list)
    unknown = sorted(set(map(str, revisions)) - known_revisions())
    if unknown:
        raise BundleError(
            f"the bundle's database is at schema revision {', '.join(unknown)}, made by "
            f"casescope {made_by}, newer than this casescope knows; import it with a newer one"
        )


def read_manifest(archive: zipfile.ZipFile) -> Manifest:
    """The bundle's manifest, checked: format, versions, its checksum over its members."""
    try:
        document = orjson.loads(archive.read(MANIFEST))
    except KeyError:
        raise BundleError(f"not a case bundle: it has no {MANIFEST}") from None
    except (orjson.JSONDecodeError, *MEMBER_ERRORS) as exc:
        raise BundleError(f"the bundle's {MANIFEST} cannot be read: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise BundleError(f"not a case bundle: {MANIFEST} is not of format {FORMAT!r}")
    _check_newer(document)
    members = tuple(_member(item) for item in _field(document, "members", list))
    manifest = Manifest(
        _field(document, "case", str),
        tuple(map(str, document["schema_revision"])),
        members,
        document["format_version"],
        str(document.get("casescope_version", "?")),
        str(document.get("created_at", "")),
    )
    if manifest.checksum != _field(document, "checksum", str):
        raise BundleError(
            f"the bundle's {MANIFEST} does not match its checksum: its member list was changed"
        )
    return manifest


def _check_names(archive: zipfile.ZipFile, manifest: Manifest) -> None:
    listed = {member.path for member in manifest.members}
    present = [info.filename for info in archive.infolist() if info.filename != MANIFEST]
    for name in present:
        if name not in listed:
            raise BundleError(f"member {name!r} is not in the bundle's manifest: refused")
    if len(present) != len(set(present)):
        raise BundleError("the bundle holds a member twice: refused")
    for name in sorted(listed - set(present)):
        raise BundleError(f"member {name!r} named by the manifest is missing from the bundle")


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, member: Member, to: Path) -> None:
    """One member into `to`, hashed as it is written, never past its declared size."""
    to.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    try:
        with archive.open(info) as src, to.open("wb") as out:
            while chunk := src.read(min(CHUNK, member.size - size + 1)):
                size += len(chunk)
                if size > member.size:
                    break
                digest.update(chunk)
                out.write(chunk)
    except MEMBER_ERRORS as exc:
        raise BundleError(f"member {member.path!r} is damaged: {exc}") from None
    if size != member.size:
        raise BundleError(
            f"member {member.path!r} does not match the manifest: "
            f"{'more' if size > member.size else size} bytes, the manifest says {member.size}"
        )
    if digest.hexdigest() != member.sha256:
        raise BundleError(
            f"member {member.path!r} does not match the manifest: sha256 "
            f"{digest.hexdigest()}, the manifest says {member.sha256}"
        )


def extract_verified(path: Path, into: Path, limits: ArchiveLimits) -> Manifest:
    """Check the bundle at `path` and extract its members into `into` (made anew); its
    home is `into / HOME`. BundleError, naming the member, on any mismatch."""
    with _open_zip(path, limits) as archive:
        manifest = read_manifest(archive)
        for info in archive.infolist():
            problem = member_problem(info, limits)
            if problem:
                raise BundleError(f"member {info.filename!r}: {problem}")
        _check_names(archive, manifest)
        infos = {info.filename: info for info in archive.infolist()}
        if into.exists():
            shutil.rmtree(into)
        for member in manifest.members:
            _extract(archive, infos[member.path], member, into / member.path)
    return manifest


def peek_manifest(path: Path, limits: ArchiveLimits) -> Manifest:
    """The checked manifest alone (the members are not read)."""
    with _open_zip(path, limits) as archive:
        return read_manifest(archive)

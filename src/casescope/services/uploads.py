"""Evidence uploaded through the web app: stream to disk, unpack zips safely, take in.

A client's file name is never used as a path: it is reduced to a safe display name, and the
bytes land in a fresh temporary folder under the home's `tmp/` before the ordinary intake
(`evidence.intake.ingest_paths`) hashes and stores them under their sha256.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import unicodedata
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select

from casescope.config import Settings
from casescope.errors import EvidenceError
from casescope.evidence.intake import IntakeReport, ingest_paths
from casescope.model.db import Database
from casescope.model.tables import AuditRecord, Case, EvidenceFile

CHUNK = 1024 * 1024
UPLOAD_PREFIX = "upload:"
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def safe_name(client_name: str | None, fallback: str = "upload") -> str:
    """A display name that is one harmless path component, whatever the client sent."""
    name = (client_name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")  # NUL, bidi, controls
    name = _UNSAFE.sub("_", unicodedata.normalize("NFKC", name)).strip(" .")
    return name[:150] or fallback


@dataclass
class UploadResult:
    report: IntakeReport = field(default_factory=IntakeReport)
    names: list[str] = field(default_factory=list)


def _unique(folder: Path, name: str) -> Path:
    candidate, n = folder / name, 1
    while candidate.exists():
        candidate, n = folder / f"{n}-{name}", n + 1
    return candidate


def save_stream(stream: BinaryIO, folder: Path, client_name: str | None) -> Path:
    """Copy an upload to `folder` in chunks (never whole in memory) under a safe name."""
    target = _unique(folder, safe_name(client_name))
    with target.open("wb") as out:
        shutil.copyfileobj(stream, out, CHUNK)
    return target


def _unpack_zip(archive: Path, folder: Path) -> None:
    """Extract members as flattened safe names; refuse archives larger than the free disk."""
    with zipfile.ZipFile(archive) as zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        total = sum(m.file_size for m in members)
        if total > shutil.disk_usage(folder).free:
            raise EvidenceError(f"{archive.name}: unpacked size exceeds the free disk space")
        target_dir = folder / (archive.name + ".d")
        target_dir.mkdir()
        for member in members:
            name = safe_name(member.filename.replace("/", "_"), fallback="member")
            with zf.open(member) as src, _unique(target_dir, name).open("wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
    archive.unlink()


def _expand_zips(folder: Path) -> None:
    for path in sorted(folder.iterdir()):
        if path.is_file() and zipfile.is_zipfile(path):
            try:
                _unpack_zip(path, folder)
            except (zipfile.BadZipFile, OSError) as exc:
                raise EvidenceError(f"{path.name}: not a readable zip archive: {exc}") from None


def _relabel(db: Database, case_id: int, folder: Path, report: IntakeReport) -> None:
    """Record uploads as `upload:<name>` instead of their temporary path."""
    prefix = str(folder.resolve()) + "/"

    def label(path: str) -> str:
        return UPLOAD_PREFIX + path.removeprefix(prefix) if path.startswith(prefix) else path

    with db.session() as session:
        rows = session.scalars(
            select(EvidenceFile).where(
                EvidenceFile.case_id == case_id, EvidenceFile.original_path.startswith(prefix)
            )
        )
        for row in rows:
            row.original_path = label(row.original_path)
    report.duplicates = [(label(p), i) for p, i in report.duplicates]
    report.rejected = [(label(p), r) for p, r in report.rejected]


def ingest_uploads(
    db: Database,
    settings: Settings,
    case: Case,
    uploads: Iterable[tuple[BinaryIO, str | None]],
    actor: str,
) -> UploadResult:
    """Take in uploaded streams (zips unpacked) for `case`; the temporary copies are removed."""
    settings.ensure_dirs()
    result = UploadResult()
    with tempfile.TemporaryDirectory(prefix="upload-", dir=settings.tmp_dir) as tmp:
        folder = Path(tmp)
        for stream, name in uploads:
            result.names.append(save_stream(stream, folder, name).name)
        _expand_zips(folder)
        result.report = ingest_paths(db, settings, case, [folder])
        _relabel(db, case.id, folder, result.report)
    with db.session() as session:
        session.add(
            AuditRecord(
                actor=actor,
                action="upload",
                case_id=case.id,
                detail=f"{len(result.names)} uploads: {', '.join(result.names)[:1500]}",
            )
        )
    return result


def import_folder(
    db: Database, settings: Settings, case: Case, folder: Path, actor: str
) -> IntakeReport:
    """Server-side import of a folder (admins only: it reads the server's disk)."""
    if not folder.is_absolute() or not folder.is_dir():
        raise EvidenceError(f"not an absolute path of a folder on the server: {folder}")
    report = ingest_paths(db, settings, case, [folder])
    with db.session() as session:
        session.add(
            AuditRecord(actor=actor, action="import_folder", case_id=case.id, detail=str(folder))
        )
    return report

"""Evidence uploaded through the web app: stream to disk, then the ordinary intake.

A client's file name is never used as a path: it is reduced to a safe display name, and the
bytes land in a fresh temporary folder under the home's `tmp/` before the ordinary intake
(`evidence.intake.ingest_paths`, as `casescope ingest`) hashes and stores them under their
sha256. Zips (by content, nested too) are taken in member by member by that intake
(`evidence.archive`): unsafe paths, symlinks and bombs are refused per member, with a reason
in the report; nothing is ever extracted under a member's name. The intake runs in a child
process of its own (`evidence.isolated`), never in the server that owns the index.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select

from casescope.config import Settings
from casescope.errors import EvidenceError
from casescope.evidence.intake import IntakeReport
from casescope.evidence.isolated import ingest_isolated
from casescope.model.db import Database
from casescope.model.enums import AuditAction, OperationKind
from casescope.model.tables import AuditRecord, Case, EvidenceFile
from casescope.services.operations import intake_operation

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


def new_upload_path(folder: Path, client_name: str | None) -> Path:
    """Where an upload named `client_name` by the client goes in `folder` (a safe, new name)."""
    return _unique(folder, safe_name(client_name))


@contextmanager
def upload_folder(settings: Settings) -> Iterator[Path]:
    """A fresh folder under the home's `tmp/` for uploads, removed with all it holds when
    the block ends, however it ends (an error, a client gone mid-upload)."""
    settings.ensure_dirs()
    with tempfile.TemporaryDirectory(prefix="upload-", dir=settings.tmp_dir) as tmp:
        yield Path(tmp)


def save_stream(stream: BinaryIO, folder: Path, client_name: str | None) -> Path:
    """Copy an upload to `folder` in chunks (never whole in memory) under a safe name."""
    target = new_upload_path(folder, client_name)
    with target.open("wb") as out:
        shutil.copyfileobj(stream, out, CHUNK)
    return target


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


def ingest_upload_folder(
    db: Database, settings: Settings, case: Case, folder: Path, names: list[str], actor: str
) -> UploadResult:
    """Take in the uploads saved in `folder` (by `upload_folder`; `names`, in upload order)
    for `case`, zips member by member; members are recorded as
    `upload:<name>.zip!<member path>`."""
    result = UploadResult(names=names)
    with intake_operation(db, case.id, OperationKind.UPLOAD, actor) as operation_id:
        result.report = ingest_isolated(settings, case.id, [folder], operation_id)
    _relabel(db, case.id, folder, result.report)
    with db.session() as session:
        session.add(
            AuditRecord(
                actor=actor,
                action=AuditAction.INTAKE_UPLOAD,
                case_id=case.id,
                detail=f"{len(result.names)} uploads: {', '.join(result.names)[:1500]}",
            )
        )
    return result


def ingest_uploads(
    db: Database,
    settings: Settings,
    case: Case,
    uploads: Iterable[tuple[BinaryIO, str | None]],
    actor: str,
) -> UploadResult:
    """Take in uploaded streams for `case`; the temporary copies are removed."""
    with upload_folder(settings) as folder:
        names = [save_stream(stream, folder, name).name for stream, name in uploads]
        return ingest_upload_folder(db, settings, case, folder, names, actor)


def import_folder(
    db: Database, settings: Settings, case: Case, folder: Path, actor: str
) -> IntakeReport:
    """Server-side import of a folder (admins only: it reads the server's disk)."""
    if not folder.is_absolute() or not folder.is_dir():
        raise EvidenceError(f"not an absolute path of a folder on the server: {folder}")
    with intake_operation(db, case.id, OperationKind.INGEST, actor, str(folder)) as operation_id:
        report = ingest_isolated(settings, case.id, [folder], operation_id)
    with db.session() as session:
        session.add(
            AuditRecord(
                actor=actor,
                action=AuditAction.INTAKE_IMPORT_FOLDER,
                case_id=case.id,
                detail=str(folder),
            )
        )
    return report

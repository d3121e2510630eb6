"""Case bundles: `casescope case export` and `casescope case import` (docs/bundles.md).

A bundle's payload is a small embedded deployment (a home with its SQLite database,
evidence and segments; no index) holding one case, made and read by the migration code:
export migrates the case from this deployment into a temporary home (Scope.CASE: only the
users, rules and rule sets the case names, no API tokens; files marked loaded, their
segments holding their events), import verifies the zip against its manifest, extracts it
and migrates the case from that home into this deployment, whose loader re-derives the
events from the segments. There is one copier of the tables: `migrate.rows`.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from sqlalchemy import func, select

from casescope.config import Settings
from casescope.errors import CaseClosedError
from casescope.evidence.archive import ArchiveLimits
from casescope.migrate.bundle_format import (
    HOME,
    BundleError,
    Manifest,
    extract_verified,
    peek_manifest,
    write_bundle,
)
from casescope.migrate.checkpoints import all_checkpoints, forget_source
from casescope.migrate.endpoints import FileSettings, MigrationError, check_idle, describe
from casescope.migrate.events import EventsReport
from casescope.migrate.phases import Phase, Scope
from casescope.migrate.runner import (
    Batches,
    Progress,
    Selection,
    checked_case_name,
    open_endpoints,
    run,
)
from casescope.migrate.verify import Expect, VerifyReport, verify_tables
from casescope.model.db import Database, schema_revisions
from casescope.model.enums import AuditAction, Operation
from casescope.model.tables import AuditRecord, Case, EvidenceFile, Segment
from casescope.parse.schema import PARSER_VERSION
from casescope.services.case_lifecycle import case_id_by_name
from casescope.services.reprocess import Requeued, requeue_files
from casescope.store.index import EventIndex

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportReport:
    manifest: Manifest
    output: Path
    bytes: int


#: Columns holding a path under the home: relative in a bundle, absolute once extracted.
_PATHS = (("evidence_files", "stored_path"), ("segments", "path"))


def _relative(connection: sqlite3.Connection, home: Path) -> None:
    """Paths under `home` made relative to it (a bundle is read wherever it is extracted)."""
    prefix = f"{home}/"
    for table, column in _PATHS:
        connection.execute(
            f"UPDATE {table} SET {column} = substr({column}, ?) WHERE substr({column}, 1, ?) = ?",
            (len(prefix) + 1, len(prefix), prefix),
        )


def _absolute(connection: sqlite3.Connection, home: Path) -> None:
    """Relative paths made absolute under `home`, where the bundle was extracted."""
    for table, column in _PATHS:
        connection.execute(
            f"UPDATE {table} SET {column} = ? || {column} WHERE substr({column}, 1, 1) != '/'",
            (f"{home}/",),
        )


def _scrub(home: Path, clean: Path) -> None:
    """The bundle's database, cleaned and in one file: the users it names keep their names
    and roles but no password (they come in disabled), its rules come in disabled (an
    import must not change what the deployment's other cases are scanned with), paths are
    relative to the bundle's home, the export's own checkpoints go."""
    with sqlite3.connect(home / "casescope.db") as connection:
        connection.execute("UPDATE users SET password_hash = '', active = 0, last_login_at = NULL")
        connection.execute("UPDATE rules SET enabled = 0")
        connection.execute("DELETE FROM migration_checkpoints")
        _relative(connection, home)
        connection.commit()
        connection.execute("VACUUM INTO ?", (str(clean),))
    connection.close()


def _mount(home: Path) -> None:
    """An extracted bundle's relative paths made absolute under its home."""
    with sqlite3.connect(home / "casescope.db") as connection:
        _absolute(connection, home)
        connection.commit()
    connection.close()


def _payload(home: Path, into: Path) -> None:
    """What of the temporary home the bundle holds: database, evidence, segments."""
    into.mkdir()
    _scrub(home, into / "casescope.db")
    for folder in ("evidence", "segments"):
        if (home / folder).is_dir():
            shutil.move(home / folder, into / folder)


def _audit(settings: Settings, action: AuditAction, case: str, detail: dict, actor: str) -> None:
    db = Database(settings)
    try:
        case_id = case_id_by_name(db, case)
        with db.session() as session:
            text = orjson.dumps(detail).decode()
            session.add(AuditRecord(actor=actor, action=action, case_id=case_id, detail=text))
    finally:
        db.dispose()


def export_case(
    settings: Settings, name: str, output: Path, progress: Progress, actor: str = "cli"
) -> ExportReport:
    """Write case `name` of this deployment as a bundle at `output` (audited)."""
    settings.ensure_dirs()
    staging = Path(tempfile.mkdtemp(prefix="bundle-export-", dir=settings.tmp_dir))
    try:
        home = staging / "deployment"
        target = FileSettings(_env_file=None, home=home)
        selection = Selection([name], Scope.CASE)
        with open_endpoints(settings, target, selection) as ends:
            run(ends, list(Phase), progress, Batches(load=False))
            revisions = schema_revisions(ends.target.engine)
        payload = staging / HOME
        _payload(home, payload)
        manifest = write_bundle(payload, name, revisions, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("exported case %s to %s (%d members)", name, output, len(manifest.members))
    report = ExportReport(manifest, output, output.stat().st_size)
    detail = {"bundle": str(output), "members": len(manifest.members), "bytes": report.bytes}
    _audit(
        settings, AuditAction.CASE_EXPORT, name, {**detail, "checksum": manifest.checksum}, actor
    )
    return report


@dataclass
class ImportReport:
    name: str
    manifest: Manifest
    events: EventsReport
    verify: VerifyReport
    #: Files queued to be parsed again (their segments are of an older parser).
    reparse: Requeued | None = None


def _staging(settings: Settings, manifest: Manifest, name: str) -> Path:
    """Where a bundle is extracted: the same folder for the same bundle and name, so that
    a run killed half-way goes on from the target's checkpoints of that source."""
    tag = hashlib.sha256(name.encode()).hexdigest()[:8]
    return settings.tmp_dir / f"import-{manifest.checksum[:16]}-{tag}"


def _check_name_free(settings: Settings, name: str, source_id: str) -> bool:
    """Whether an earlier import of this bundle under `name` is to be finished (its
    checkpoints are there); BundleError when another case has the name."""
    db = Database(settings)
    try:
        if all_checkpoints(db, source_id):
            return True
        with db.read() as session:
            taken = session.scalar(select(func.count()).where(Case.name == name))
    finally:
        db.dispose()
    if taken:
        raise BundleError(
            f"this deployment has a case named {name!r} already: import the bundle under "
            "another name with --as NEW_NAME"
        )
    return False


def _bring_in(
    source: Settings, settings: Settings, names: tuple[str, str], into: Into
) -> tuple[EventsReport, VerifyReport]:
    """Migrate the extracted bundle's case (`names`: its name there, its name here) in,
    check its tables, and forget the copy's checkpoints once it matches."""
    case, name = names
    rename = {case: name} if name != case else {}
    selection = Selection([case], Scope.DEPLOYMENT, rename, move_keys=True)
    with open_endpoints(source, settings, selection) as ends:
        ends.target_index = into.index
        events = run(ends, list(Phase), into.progress) or EventsReport()
        checks = VerifyReport()
        expect = Expect(ends.rename, ends.keymap)
        verify_tables(ends.source, ends.target, ends.cases, checks, expect=expect)
        if checks.ok:
            forget_source(ends.target, ends.source_id)
    return events, checks


def _stale_files(db: Database, case_id: int) -> list[int]:
    """The case's files loaded from a segment of an older parser."""
    with db.read() as session:
        return list(
            session.scalars(
                select(EvidenceFile.id)
                .join(Segment, Segment.id == EvidenceFile.segment_id)
                .where(EvidenceFile.case_id == case_id, Segment.parser_version < PARSER_VERSION)
                .order_by(EvidenceFile.id)
            )
        )


def _reparse_stale(settings: Settings, name: str) -> Requeued | None:
    """Queue the imported case's files whose segments an older parser wrote to be parsed
    again (a closed case is left as it is: it is read-only)."""
    db = Database(settings)
    try:
        case_id = case_id_by_name(db, name)
        stale = _stale_files(db, case_id)
        if not stale:
            return None
        try:
            return requeue_files(db, settings, case_id, Operation.REINDEX, stale, "case import")
        except CaseClosedError:
            logger.warning("case %s is closed: its %d older segments stay", name, len(stale))
            return None
    finally:
        db.dispose()


def _check_index_free(settings: Settings) -> None:
    """Refuse at once when another process owns the embedded index the import loads into
    (rather than after the case's rows are in)."""
    try:
        check_idle(settings)
    except MigrationError:
        holder = settings.owner_lock_path.read_text().strip() or "another process"
        raise BundleError(
            f"cannot import now: this deployment's event index is owned by {holder}; stop "
            "it (serve, ingest, workers) and import again"
        ) from None


@dataclass
class Into:
    """How an import reaches this deployment: progress callbacks, who asks (audited), and
    its index when the caller holds it open (the web server, owner of the embedded index);
    None: the import opens it, refused while another process owns it."""

    progress: Progress = field(default_factory=Progress)
    actor: str = "cli"
    index: EventIndex | None = None


def import_bundle(
    settings: Settings, path: Path, new_name: str | None, into: Into | None = None
) -> ImportReport:
    """Verify the bundle at `path`, then bring its case in (as `new_name` if given)."""
    into = into or Into()
    limits = ArchiveLimits.from_settings(settings)
    manifest = peek_manifest(path, limits)
    name = manifest.case if new_name is None else checked_case_name(new_name)
    settings.ensure_dirs()
    if into.index is None:
        _check_index_free(settings)
    staging = _staging(settings, manifest, name)
    source = FileSettings(_env_file=None, home=staging / HOME)
    resuming = _check_name_free(settings, name, describe(source))
    try:
        extract_verified(path, staging, limits)
        _mount(staging / HOME)
        events, checks = _bring_in(source, settings, (manifest.case, name), into)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("imported case %s%s", name, " (a killed import finished)" if resuming else "")
    if not checks.ok:
        return ImportReport(name, manifest, events, checks)
    detail = {"bundle": str(path), "checksum": manifest.checksum, "case": manifest.case}
    detail.update(files=events.files, events=events.rows, made_by=manifest.casescope_version)
    _audit(settings, AuditAction.CASE_IMPORT, name, detail, into.actor)
    return ImportReport(name, manifest, events, checks, _reparse_stale(settings, name))

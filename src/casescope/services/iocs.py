"""IOCs of a case: add, import, list, enable/disable, remove (their hits: ioc_hits.py).

Every change that can create hits (add, import, enable) hunts the new IOCs in the case's
completed files. When the caller owns the event index, only the new IOCs are hunted there
(`services.ioc_index`): every other hit stays as it is. Otherwise it queues an `ioc_only`
re-hunt: workers re-read each file's segment (no re-parse) and replace the file's hits
with those of the case's enabled IOCs (`rehunt` always does that). Disabling or removing
an IOC deletes its hits at once, and a worker never writes hits of an IOC that is not
enabled when it persists (`enabled_ioc_ids`), so a re-hunt in flight cannot bring them back.

The CLI and the web app call this module; attacker-controlled text (IOC values, notes, field
values) is only ever bound as SQL parameters here. Escaping for output is the caller's job.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from casescope.config import Settings
from casescope.hunt.ioc import Ioc, IocError, IocType
from casescope.hunt.lists import IocImport, IocLineError, parse_ioc_csv, parse_ioc_list
from casescope.hunt.normalise import normalise
from casescope.jobs.case_iocs import enabled_iocs
from casescope.model.db import Database, in_chunks
from casescope.model.enums import AuditAction, FileStatus, Operation
from casescope.model.tables import AuditRecord, EvidenceFile, IocHit
from casescope.model.tables import Ioc as IocRow
from casescope.services.case_lifecycle import ensure_open
from casescope.services.ioc_index import hunt_new_iocs
from casescope.services.progress import FileSet
from casescope.services.reprocess import requeue_files

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

#: Longest note kept with an IOC (imports may carry long descriptions).
MAX_NOTE_CHARS = 2000


class ImportFormat(StrEnum):
    """How an IOC file is read; `auto` picks CSV when the first line is a `type,value` header."""

    AUTO = "auto"
    CSV = "csv"
    LIST = "list"


@dataclass(frozen=True)
class IocRecord:
    """One stored IOC, detached from the session."""

    id: int
    case_id: int
    type: IocType
    value: str  # normalised: what is matched
    original: str  # as entered or imported
    note: str
    source: str
    enabled: bool
    created_at: datetime


@dataclass
class IocChange:
    """What an add, import or enable did, and the re-hunt it queued."""

    added: list[int] = field(default_factory=list)  # ids of the new (or re-enabled) IOCs
    changed: list[int] = field(default_factory=list)  # ids enabled or disabled by this call
    existing: int = 0  # already in the case (or already in the wanted state): left as they are
    duplicates: int = 0  # repeated within the input
    errors: list[IocLineError] = field(default_factory=list)  # bad lines (imports)
    queued: int = 0  # files queued for `ioc_only`
    file_set: FileSet | None = None  # those files, for following their progress
    index_hits: int | None = None  # hits of the new IOCs found in the index (None: not used)


# ---------------------------------------------------------------- reading IOCs


def _record(row: IocRow) -> IocRecord:
    return IocRecord(
        row.id,
        row.case_id,
        IocType(row.type),
        row.value,
        row.original,
        row.note,
        row.source,
        row.enabled,
        row.created_at,
    )


def list_iocs(
    db: Database,
    case_id: int,
    *,
    enabled: bool | None = None,
    ioc_type: IocType | None = None,
) -> list[IocRecord]:
    """The case's IOCs in id order, optionally only enabled/disabled ones or one type."""
    query = select(IocRow).where(IocRow.case_id == case_id)
    if enabled is not None:
        query = query.where(IocRow.enabled == enabled)
    if ioc_type is not None:
        query = query.where(IocRow.type == IocType(ioc_type).value)
    with db.read() as session:
        return [_record(row) for row in session.scalars(query.order_by(IocRow.id))]


# ---------------------------------------------------------------- adding IOCs


def add_iocs(
    db: Database,
    settings: Settings,
    case_id: int,
    values: Sequence[str],
    ioc_type: IocType | str | None = None,
    *,
    note: str = "",
    source: str = "cli",
    actor: str = "cli",
    index: EventIndex | None = None,
) -> IocChange:
    """Add indicators (type inferred per value unless given) and hunt them (`_hunt_new`).

    All or nothing: if any value is invalid, `IocError` names every bad one and nothing is
    added.
    """
    found = IocImport()
    for number, value in enumerate(values, start=1):
        try:
            found.add(normalise(value, ioc_type, note or None))
        except IocError as exc:
            found.errors.append(IocLineError(number, value, str(exc)))
    if found.errors:
        raise IocError("; ".join(error.message for error in found.errors))
    ensure_open(db, case_id)
    return _store(db, settings, case_id, found, _Origin(source, actor, index))


def import_iocs(
    db: Database,
    settings: Settings,
    case_id: int,
    text: str,
    *,
    ioc_type: IocType | str | None = None,
    fmt: ImportFormat = ImportFormat.AUTO,
    source: str = "import",
    actor: str = "cli",
    index: EventIndex | None = None,
) -> IocChange:
    """Import a CSV (`type,value[,note]`) or a plain list (one value per line).

    Bad lines are reported in `IocChange.errors` with their line numbers; the good ones are
    stored. With `ioc_type`, a plain list's values all get that type (CSV rows keep theirs;
    an empty type cell gets `ioc_type`).
    """
    ensure_open(db, case_id)
    found = parse_iocs(text, ioc_type=ioc_type, fmt=fmt)
    change = _store(db, settings, case_id, found, _Origin(source, actor, index))
    change.errors = found.errors
    return change


def parse_iocs(
    text: str, *, ioc_type: IocType | str | None = None, fmt: ImportFormat = ImportFormat.AUTO
) -> IocImport:
    """Parse an IOC file without storing it (see `import_iocs`)."""
    if fmt is ImportFormat.AUTO:
        fmt = ImportFormat.CSV if _has_csv_header(text) else ImportFormat.LIST
    if fmt is ImportFormat.LIST:
        return parse_ioc_list(text, ioc_type)
    return parse_ioc_csv(_retype_empty_cells(text, ioc_type) if ioc_type else text)


def _has_csv_header(text: str) -> bool:
    for line in text.splitlines():
        stripped = line.strip().lstrip("\ufeff")
        if stripped and not stripped.startswith("#"):
            cells = [cell.strip().strip('"').lower() for cell in stripped.split(",")[:2]]
            return cells == ["type", "value"]
    return False


def _retype_empty_cells(text: str, ioc_type: IocType | str) -> str:
    """The CSV with `ioc_type` in every empty type cell (quoting and line numbers kept)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in csv.reader(io.StringIO(text)):
        if len(row) >= 2 and not row[0].strip() and row[1].strip():
            row = [str(ioc_type), *row[1:]]
        writer.writerow(row)
    return out.getvalue()


@dataclass(frozen=True)
class _Origin:
    """Who made a change, and the index to hunt new IOCs in (None: re-read segments)."""

    source: str
    actor: str
    index: EventIndex | None = None


def _store(
    db: Database, settings: Settings, case_id: int, found: IocImport, origin: _Origin
) -> IocChange:
    """Insert the new IOCs (skipping ones the case has), audit, and hunt them."""
    source, actor = origin.source, origin.actor
    change = IocChange(duplicates=found.duplicates)
    with db.session() as session:
        have = _existing_keys(session, case_id, found.iocs)
        for ioc in found.iocs:
            if (ioc.type.value, ioc.normalised) in have:
                change.existing += 1
                continue
            row = IocRow(
                case_id=case_id,
                type=ioc.type.value,
                value=ioc.normalised,
                original=ioc.value.strip(),
                note=(ioc.comment or "")[:MAX_NOTE_CHARS],
                source=source[:200],
                enabled=True,
            )
            session.add(row)
            session.flush()
            change.added.append(row.id)
        _audit(session, actor, AuditAction.IOC_ADD, case_id, len(change.added), f"source={source}")
    if change.added:
        _hunt_new(db, settings, case_id, change, origin)
    return change


def _existing_keys(session: Session, case_id: int, iocs: Sequence[Ioc]) -> set[tuple[str, str]]:
    values = list({ioc.normalised for ioc in iocs})
    keys: set[tuple[str, str]] = set()
    for chunk in in_chunks(values):
        rows = session.execute(
            select(IocRow.type, IocRow.value).where(
                IocRow.case_id == case_id, IocRow.value.in_(chunk)
            )
        )
        keys.update((kind, value) for kind, value in rows)
    return keys


# ---------------------------------------------------------------- changing IOCs


def set_enabled(
    db: Database,
    settings: Settings,
    case_id: int,
    ioc_ids: Sequence[int],
    enabled: bool,
    *,
    actor: str = "cli",
    index: EventIndex | None = None,
) -> IocChange:
    """Enable (and hunt, `_hunt_new`) or disable (deleting their hits at once) the given IOCs.

    Raises `IocError` if an id is not an IOC of the case; nothing is changed then.
    """
    ensure_open(db, case_id)
    change = IocChange()
    wanted = sorted(set(ioc_ids))
    with db.session() as session:
        _check_ids(session, case_id, wanted)
        changed: list[int] = []
        for chunk in in_chunks(wanted):
            changed += session.scalars(
                select(IocRow.id).where(IocRow.id.in_(chunk), IocRow.enabled.is_not(enabled))
            )
        for chunk in in_chunks(changed):
            session.execute(update(IocRow).where(IocRow.id.in_(chunk)).values(enabled=enabled))
            if not enabled:
                session.execute(delete(IocHit).where(IocHit.ioc_id.in_(chunk)))
        action = AuditAction.IOC_ENABLE if enabled else AuditAction.IOC_DISABLE
        _audit(session, actor, action, case_id, len(changed), _ids_detail(changed))
    change.changed = changed
    change.added = changed if enabled else []
    change.existing = len(wanted) - len(changed)
    if enabled and changed:
        _hunt_new(db, settings, case_id, change, _Origin("", actor, index))
    return change


def remove_iocs(db: Database, case_id: int, ioc_ids: Sequence[int], *, actor: str = "cli") -> int:
    """Delete the given IOCs and their hits; returns how many hits were deleted.

    Raises `IocError` if an id is not an IOC of the case; nothing is deleted then.
    """
    ensure_open(db, case_id)
    wanted = sorted(set(ioc_ids))
    hits = 0
    with db.session() as session:
        _check_ids(session, case_id, wanted)
        for chunk in in_chunks(wanted):
            hits += session.execute(delete(IocHit).where(IocHit.ioc_id.in_(chunk))).rowcount or 0
            session.execute(delete(IocRow).where(IocRow.id.in_(chunk)))
        _audit(session, actor, AuditAction.IOC_REMOVE, case_id, len(wanted), _ids_detail(wanted))
    return hits


def rehunt(db: Database, settings: Settings, case_id: int, *, actor: str = "cli") -> IocChange:
    """Queue `ioc_only` for the case's completed files (e.g. after a failed re-hunt)."""
    change = IocChange()
    _queue_rehunt(db, settings, case_id, change, actor)
    return change


#: Ids named in the error for ids that are not the case's (the rest are counted).
_MISSING_SHOWN = 20


def _check_ids(session: Session, case_id: int, ioc_ids: Sequence[int]) -> None:
    wanted = sorted(set(ioc_ids))
    if not wanted:
        raise IocError("no IOC ids given")
    found: set[int] = set()
    for chunk in in_chunks(wanted):
        found.update(
            session.scalars(
                select(IocRow.id).where(IocRow.case_id == case_id, IocRow.id.in_(chunk))
            )
        )
    missing = [i for i in wanted if i not in found]
    if missing:
        shown = ", ".join(map(str, missing[:_MISSING_SHOWN]))
        more = len(missing) - _MISSING_SHOWN
        rest = f" and {more} more" if more > 0 else ""
        raise IocError(f"no IOC with id {shown}{rest} in this case")


def _ids_detail(ids: Iterable[int]) -> str:
    return "ids=" + ",".join(map(str, sorted(set(ids))))[:1000]


def _audit(
    session: Session, actor: str, action: AuditAction, case_id: int, count: int, detail: str
) -> None:
    session.add(
        AuditRecord(actor=actor, action=action, case_id=case_id, events=count, detail=detail)
    )


def _hunt_new(
    db: Database, settings: Settings, case_id: int, change: IocChange, origin: _Origin
) -> None:
    """Hunt the IOCs `change.added` in the case's completed files.

    With the index (the caller owns it): only those IOCs, in the index, keeping every other
    hit as it is; completed files not in the index are queued for `ioc_only`. Without:
    `ioc_only` for every completed file (workers re-hunt all enabled IOCs from segments).
    """
    if origin.index is None:
        _queue_rehunt(db, settings, case_id, change, origin.actor)
        return
    added = set(change.added)
    with db.read() as session:
        iocs = [ioc for ioc in enabled_iocs(session, case_id) if ioc.id in added]
    hunt = hunt_new_iocs(db, settings, origin.index, case_id, iocs)
    change.index_hits = hunt.hits
    with db.session() as session:
        detail = f"{_ids_detail(added)[:900]} files={hunt.files}"
        _audit(session, origin.actor, AuditAction.IOC_INDEX_HUNT, case_id, hunt.hits, detail)
    if hunt.not_indexed:
        _queue_rehunt(db, settings, case_id, change, origin.actor, hunt.not_indexed)


def _queue_rehunt(
    db: Database,
    settings: Settings,
    case_id: int,
    change: IocChange,
    actor: str,
    only: Sequence[int] | None = None,
) -> None:
    """Queue `ioc_only` for every completed file of the case that has a segment (or `only`).

    Files still queued or being processed pick the IOCs up when a worker builds their job's
    analyzers; only files completed before the change need re-hunting.
    """
    with db.read() as session:
        file_ids = list(
            session.scalars(
                select(EvidenceFile.id).where(
                    EvidenceFile.case_id == case_id,
                    EvidenceFile.status == FileStatus.COMPLETED,
                    EvidenceFile.segment_id.is_not(None),
                    EvidenceFile.event_count > 0,
                )
            )
        )
    if only is not None:
        wanted = set(only)
        file_ids = [file_id for file_id in file_ids if file_id in wanted]
    if not file_ids:
        return
    requeued = requeue_files(db, settings, case_id, Operation.IOC_ONLY, file_ids, actor=actor)
    change.queued, change.file_set = requeued.count, requeued.file_set

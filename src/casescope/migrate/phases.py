"""Which table is copied in which phase, how a case's rows are selected, and the canonical
form of a row that checksums and the "same row already there" test compare.

Every table of `Base.metadata` must be in TABLE_PHASES or NOT_COPIED
(tests/unit/migrate/test_phases.py fails otherwise), so a table added later is never skipped
in silence.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Table, select, true

from casescope.model.enums import IndexState
from casescope.model.tables import Base, Case, Detection, EvidenceFile
from casescope.model.users import CaseAccess, SavedSearch


class Phase(StrEnum):
    """The phases, in the order they run: each needs the ones before it."""

    CONFIG = "config"
    FINDINGS = "findings"
    EVENTS = "events"

    @property
    def order(self) -> int:
        return list(Phase).index(self)


class Scope(StrEnum):
    """What of the global tables goes with the selected cases."""

    #: Everything: a deployment copied to another (`casescope migrate`).
    DEPLOYMENT = "deployment"
    #: Only what the cases need: a case bundle (`casescope case export`). The users they
    #: name, the rules their detections name, the rule sets their files name, the
    #: placeholders; no API tokens and no audit rows of no case.
    CASE = "case"


TABLE_PHASES: dict[str, Phase] = {
    # config: what the deployment cannot run without, seconds to copy
    "users": Phase.CONFIG,
    "cases": Phase.CONFIG,
    "case_access": Phase.CONFIG,
    "api_tokens": Phase.CONFIG,
    "rules": Phase.CONFIG,
    "rule_sets": Phase.CONFIG,
    "sigma_placeholders": Phase.CONFIG,
    "saved_searches": Phase.CONFIG,
    "iocs": Phase.CONFIG,
    "exclusions": Phase.CONFIG,
    # findings: the file registry first (detections and hits point to its rows), then the
    # results and history; the files' bytes and events follow in the events phase
    "segments": Phase.FINDINGS,
    "evidence_files": Phase.FINDINGS,
    "operations": Phase.FINDINGS,
    "jobs": Phase.FINDINGS,
    "detections": Phase.FINDINGS,
    "ioc_hits": Phase.FINDINGS,
    "event_marks": Phase.FINDINGS,
    "event_notes": Phase.FINDINGS,
    "story_items": Phase.FINDINGS,
    "audit": Phase.FINDINGS,
}

#: Tables left out, and why.
NOT_COPIED: dict[str, str] = {
    "web_sessions": "login sessions: users log in anew on the target",
    "login_failures": "the login rate limit's recent counts: they start afresh on the target",
    "setup_tokens": "one-time tokens of a source that had no users yet",
    "workers": "the source's live worker processes",
    "load_pieces": "pieces of files being parsed; the source is idle when it is migrated",
    "file_slices": "slices of files being parsed; the source is idle when it is migrated",
    "migration_checkpoints": "the target's own migration progress",
    "case_deletions": "the source's own deletions: what they left to remove are paths there",
}

#: Columns that change by use or are re-derived on the target: left out of checksums.
VOLATILE: dict[str, frozenset[str]] = {
    "users": frozenset({"last_login_at"}),
    "api_tokens": frozenset({"last_used_at"}),
    "evidence_files": frozenset({"index_state", "index_generation", "load_bundle"}),
}
#: Columns holding a path under the home: compared relative to it, rewritten on the target.
PATH_COLUMNS: dict[str, frozenset[str]] = {
    "evidence_files": frozenset({"stored_path"}),
    "segments": frozenset({"path"}),
}
#: Unit of the rows that belong to no case.
NO_CASE = 0


def tables_of(phase: Phase) -> list[Table]:
    """The phase's tables, parents before children."""
    return [t for t in Base.metadata.sorted_tables if TABLE_PHASES.get(t.name) is phase]


def key_column(table: Table) -> Any:
    [column] = table.primary_key.columns
    return column


def _files_of(case_id: int) -> Any:
    return select(EvidenceFile.id).where(EvidenceFile.case_id == case_id)


def _case_users(case_ids: list[int]) -> Any:
    """The users a set of cases names: owners, grants, authors of saved searches."""
    owners = select(Case.owner_id).where(Case.id.in_(case_ids), Case.owner_id.is_not(None))
    grants = select(CaseAccess.user_id).where(CaseAccess.case_id.in_(case_ids))
    searches = select(SavedSearch.user_id).where(SavedSearch.case_id.in_(case_ids))
    return owners.union(grants, searches)


def _case_global(table: Table, case_ids: list[int]) -> ColumnElement[bool] | None:
    """The rows of a global table a case bundle holds (None: none)."""
    columns = table.c
    if table.name == "users":
        return columns.id.in_(select(_case_users(case_ids).subquery().c[0]))
    if table.name == "rules":
        used = select(Detection.rule_id).where(Detection.case_id.in_(case_ids))
        return columns.id.in_(used)
    if table.name == "rule_sets":
        used = select(EvidenceFile.sigma_ruleset).where(EvidenceFile.case_id.in_(case_ids))
        return columns.hash.in_(used)
    if table.name == "sigma_placeholders":
        return true()
    return None


def units(
    table: Table, case_ids: list[int], scope: Scope = Scope.DEPLOYMENT
) -> list[tuple[int, ColumnElement[bool]]]:
    """(unit, condition) pairs: one per case for a table of case rows (plus rows of no case
    where its case column may be empty), or one unit of every row for a global table.
    A case bundle (Scope.CASE) takes no rows of no case but those `_case_global` names."""
    found = _units(table, case_ids)
    if scope is Scope.DEPLOYMENT:
        return found
    cased = [(unit, condition) for unit, condition in found if unit != NO_CASE]
    if cased:
        return cased
    condition = _case_global(table, case_ids)
    return [] if condition is None else [(NO_CASE, condition)]


def _units(table: Table, case_ids: list[int]) -> list[tuple[int, ColumnElement[bool]]]:
    columns = table.c
    if table.name == "cases":
        return [(case, columns.id == case) for case in case_ids]
    if table.name == "jobs":
        return [(case, columns.file_id.in_(_files_of(case))) for case in case_ids]
    if table.name == "segments":
        used = select(EvidenceFile.segment_id)
        return [
            (case, columns.id.in_(used.where(EvidenceFile.case_id == case))) for case in case_ids
        ]
    if "case_id" not in columns:
        return [(NO_CASE, true())]
    found = [(case, columns.case_id == case) for case in case_ids]
    if columns.case_id.nullable:
        found.append((NO_CASE, columns.case_id.is_(None)))
    return found


def renamed(table: Table, row: Mapping[str, Any], rename: Mapping[int, str]) -> Mapping[str, Any]:
    """A `cases` row under the name `--as` gives it on the target; any other row as it is."""
    if table.name == "cases" and row["id"] in rename:
        return {**row, "name": rename[row["id"]]}
    return row


def as_utc(value: datetime) -> datetime:
    """SQLite gives back naive datetimes of what were UTC times."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def relative_path(value: str | None, home: Path) -> str | None:
    if value is None:
        return None
    prefix = f"{home}/"
    if value.startswith(prefix) and _normal(value) and home.is_absolute():
        return value[len(prefix) :]  # what pathlib gives, without its objects (verify's hot path)
    path = Path(value)
    return path.relative_to(home).as_posix() if path.is_relative_to(home) else value


def _normal(value: str) -> bool:
    """A path pathlib would not rewrite: no empty or `.` parts, no trailing slash."""
    return "//" not in value and "/./" not in value and not value.endswith(("/", "/."))


def _utc(value: datetime, home: Path) -> datetime:
    """In UTC; a naive one (SQLite) is UTC already and is written so (`OPT_NAIVE_UTC`)."""
    return value if value.tzinfo is None else value.astimezone(UTC)


def _float_text(value: float, home: Path) -> str:
    return repr(value)  # JSON would turn NaN into null


def _path_text(value: str, home: Path) -> str | None:
    return relative_path(value, home)


#: Python types of columns whose values `canonical` rewrites; any other value is serialised
#: as it is (an enum as its value, a bool as true or false).
_REWRITES: dict[type, Callable[[Any, Path], Any]] = {datetime: _utc, float: _float_text}


def canonical(table: Table, row: Mapping[str, Any], home: Path) -> bytes:
    """The row's content as both sides see it: volatile columns left out, paths relative
    to the home, values in one plain form whatever the database."""
    names, rewrites = _layout(table)
    values = [row[name] for name in names]
    for at, rewrite in rewrites:
        if values[at] is not None:
            values[at] = rewrite(values[at], home)
    return orjson.dumps(values, option=orjson.OPT_NAIVE_UTC)


@functools.cache
def _layout(table: Table) -> tuple[tuple[str, ...], tuple[tuple[int, Callable], ...]]:
    """The columns `canonical` compares, in order, and the rewrite of each that needs one
    (by position): per table once, so that a row costs one list and one `orjson.dumps`."""
    skip = VOLATILE.get(table.name, frozenset())
    paths = PATH_COLUMNS.get(table.name, frozenset())
    columns = [c for c in table.columns if c.name not in skip]
    rewrites = []
    for at, column in enumerate(columns):
        rewrite = _path_text if column.name in paths else _REWRITES.get(column.type.python_type)
        if rewrite is not None:
            rewrites.append((at, rewrite))
    return tuple(c.name for c in columns), tuple(rewrites)


def row_hash(content: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(content, digest_size=8).digest(), "big")


#: Checksums are sums of row hashes modulo 2**64: independent of order, unlike XOR not
#: fooled by a row that is there twice.
CHECKSUM_MOD = 1 << 64


def for_target(table: Table, row: Mapping[str, Any], source_home: Path, target_home: Path) -> dict:
    """The source row as the target stores it: paths under the target's home, times as UTC,
    and a file's events not yet in the target's index (the events phase loads them)."""
    out = dict(row)
    for name in PATH_COLUMNS.get(table.name, ()):
        relative = relative_path(out[name], source_home)
        if relative is not None and not Path(relative).is_absolute():
            out[name] = str(target_home / relative)
    for name, value in out.items():
        if isinstance(value, datetime):
            out[name] = as_utc(value)
    if table.name == "evidence_files":
        out.update(index_state=IndexState.NONE, index_generation=0, load_bundle=None)
    return out

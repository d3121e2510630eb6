"""Sigma rule sets for the admin pages and API: what is imported (per set, per rule, with
why a rule cannot run), importing an uploaded zip or YAML files or a server folder, and
enabling or disabling rules by level, status, tag, path or id.

The import itself, the activation of the compiled set and enable/disable are in
store/rulesets.py (the same code as `casescope rules ...`). An upload is checked before it is
loaded: a zip must be a zip whose YAML members unpack to at most
`CASESCOPE_RULES_MAX_UNPACKED_MB`, and an upload without any `.yml`/`.yaml` file is refused,
since importing nothing under an existing set's name would remove that set's rules.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Select, case, func, or_, select

from casescope.config import Settings
from casescope.detect.levels import SigmaLevel, SigmaStatus
from casescope.detect.load import YAML_SUFFIXES
from casescope.errors import CasescopeError
from casescope.model.db import Database
from casescope.model.tables import Rule
from casescope.store.rulesets import ImportReport, import_rules, tag_condition

logger = logging.getLogger(__name__)

MAX_SET_NAME = 200
#: Members of an uploaded zip (rules and everything else) past which it is refused.
MAX_ZIP_MEMBERS = 100_000
#: Rules shown per page of the rules list.
RULES_PAGE = 100


class RuleUploadError(CasescopeError):
    """The upload cannot be imported as a rule set (answered 400)."""


@dataclass(frozen=True)
class RuleSetSummary:
    source: str
    rules: int
    enabled: int
    failed: int
    warned: int
    imported_at: datetime | None


@dataclass(frozen=True)
class RuleFilter:
    """Which rules to list; every given criterion must hold."""

    source: str | None = None
    level: SigmaLevel | None = None
    status: SigmaStatus | None = None
    tag: str | None = None
    text: str | None = None  # in the title, path or rule id
    failed: bool = False  # only rules that cannot run
    enabled: bool | None = None


@dataclass(frozen=True)
class RulePage:
    total: int
    rules: list[Rule]


def check_set_name(name: str) -> str:
    """A rule set's name: 1-200 printable characters."""
    name = name.strip()
    if not name or len(name) > MAX_SET_NAME or not name.isprintable():
        raise RuleUploadError(f"a rule set's name is 1-{MAX_SET_NAME} printable characters")
    return name


def rule_sets(db: Database) -> list[RuleSetSummary]:
    """Every imported rule set with its counts, by name."""
    query = (
        select(
            Rule.source,
            func.count(),
            func.sum(case((Rule.enabled & Rule.error.is_(None), 1), else_=0)),
            func.sum(case((Rule.error.is_not(None), 1), else_=0)),
            func.sum(case((Rule.warnings.is_not(None), 1), else_=0)),
            func.max(Rule.imported_at),
        )
        .group_by(Rule.source)
        .order_by(Rule.source)
    )
    with db.read() as session:
        return [
            RuleSetSummary(source, total, enabled or 0, failed or 0, warned or 0, at)
            for source, total, enabled, failed, warned, at in session.execute(query)
        ]


def _filtered(query: Select, wanted: RuleFilter) -> Select:
    if wanted.source:
        query = query.where(Rule.source == wanted.source)
    if wanted.level:
        query = query.where(Rule.level == wanted.level.value)
    if wanted.status:
        query = query.where(Rule.status == wanted.status.value)
    if wanted.tag:
        query = query.where(tag_condition((wanted.tag,)))
    if wanted.text:
        needle = f"%{escape_like(wanted.text.lower())}%"
        query = query.where(
            or_(
                func.lower(Rule.title).like(needle, escape="\\"),
                func.lower(Rule.path).like(needle, escape="\\"),
                func.lower(Rule.rule_uid).like(needle, escape="\\"),
            )
        )
    if wanted.failed:
        query = query.where(Rule.error.is_not(None))
    if wanted.enabled is not None:
        query = query.where(Rule.enabled.is_(wanted.enabled))
    return query


def find_rules(
    db: Database, wanted: RuleFilter, offset: int = 0, limit: int = RULES_PAGE
) -> RulePage:
    """One page of the rules `wanted` selects, by set and path, and how many there are."""
    count = _filtered(select(func.count()).select_from(Rule), wanted)
    rows = _filtered(select(Rule), wanted).order_by(Rule.source, Rule.path)
    with db.read() as session:
        total = session.scalar(count) or 0
        found = list(session.scalars(rows.offset(offset).limit(limit)))
    return RulePage(total, found)


def escape_like(text: str) -> str:
    """`text` matched literally by LIKE (escape character: backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _yaml_name(name: str) -> bool:
    return name.lower().endswith(YAML_SUFFIXES)


def check_zip(path: Path, max_unpacked: int) -> None:
    """Refuse a file that is not a zip, holds no YAML, has too many members, or whose YAML
    members would unpack past `max_unpacked` bytes (the loader reads each one whole)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        raise RuleUploadError(f"{path.name} is not a readable zip") from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise RuleUploadError(f"a rules zip holds at most {MAX_ZIP_MEMBERS:,} files")
    rules = [m for m in members if _yaml_name(m.filename) and not m.is_dir()]
    if not rules:
        raise RuleUploadError(f"{path.name} holds no .yml or .yaml file")
    unpacked = sum(m.file_size for m in rules)
    if unpacked > max_unpacked:
        raise RuleUploadError(
            f"{path.name}'s rules unpack to {unpacked // 2**20:,} MB, over "
            f"{max_unpacked // 2**20:,} MB (CASESCOPE_RULES_MAX_UNPACKED_MB)"
        )


def _upload_source(folder: Path, paths: list[Path], max_unpacked: int) -> Path:
    """What to load from an upload: the one zip, or the folder of its YAML files."""
    zips = [p for p in paths if p.suffix.lower() == ".zip"]
    if zips:
        if len(paths) != 1:
            raise RuleUploadError("upload one .zip, or YAML files, not both or several zips")
        check_zip(zips[0], max_unpacked)
        return zips[0]
    if not any(_yaml_name(p.name) for p in paths):
        raise RuleUploadError("no .yml or .yaml file in the upload (or upload one .zip)")
    if sum(p.stat().st_size for p in paths) > max_unpacked:
        raise RuleUploadError("the rules are over CASESCOPE_RULES_MAX_UNPACKED_MB")
    return folder


def import_upload(
    settings: Settings, db: Database, folder: Path, name: str, actor: str
) -> ImportReport:
    """Import the files uploaded into `folder` (one zip, or YAML files) as rule set `name`."""
    paths = sorted(p for p in folder.iterdir() if p.is_file())
    source = _upload_source(folder, paths, settings.rules_max_unpacked_mb * 2**20)
    report = import_rules(db, settings, source, check_set_name(name), actor)
    logger.info("rule set %s imported by %s: %d rules", name, actor, report.rules)
    return report


def import_folder(
    settings: Settings, db: Database, path: Path, name: str | None, actor: str
) -> ImportReport:
    """Import a folder (or zip) on the server's disk as a rule set (its name by default)."""
    if path.is_file() and path.suffix.lower() == ".zip":
        check_zip(path, settings.rules_max_unpacked_mb * 2**20)
    elif not path.is_dir():
        raise RuleUploadError(f"no folder or .zip at {str(path)[:200]!r} on the server")
    elif not any(_yaml_name(p.name) for p in path.rglob("*")):
        raise RuleUploadError(f"no .yml or .yaml file under {str(path)[:200]!r}")
    label = check_set_name(name or path.stem or "rules")
    return import_rules(db, settings, path, label, actor)

"""Sigma rule sets: import, list, and the compiled active set that workers evaluate.

Rules live in the metadata DB with their YAML, so any worker can compile them. The active
set (enabled rules that compiled) has a content hash; its compiled form is cached on disk
as `<home>/rules/compiled-<hash>.pkl` and the hash of the current one is in
`<home>/rules/active`, so a worker checks one small file per job and re-loads only when
the set changed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update

from casescope.config import Settings
from casescope.detect.engine import CompiledRuleSet, compile_rules
from casescope.detect.load import RuleLoad, load_document, load_rules
from casescope.errors import CasescopeError
from casescope.model.db import Database
from casescope.model.tables import AuditRecord, Rule

logger = logging.getLogger(__name__)

ENGINE_VERSION = "1"


@dataclass(frozen=True)
class ImportReport:
    source: str
    rules: int
    failed: int


@dataclass
class ActiveRules:
    hash: str
    ruleset: CompiledRuleSet
    row_ids: dict[str, int]  # Sigma rule id -> rules.id


def _rules_dir(settings: Settings) -> Path:
    path = settings.home_dir / "rules"
    path.mkdir(parents=True, exist_ok=True)
    return path


def import_rules(
    db: Database, settings: Settings, source: Path, name: str | None = None, actor: str = "cli"
) -> ImportReport:
    """Load a folder or zip of Sigma rules into the DB (replacing an import of that name)."""
    name = name or source.name
    load = load_rules(source)
    failures = {f.path: f.reason for f in compile_rules(load).failures}
    with db.session() as session:
        existing = {r.path: r for r in session.scalars(select(Rule).where(Rule.source == name))}
        for loaded in load.rules:
            rule = loaded.rule
            row = existing.pop(loaded.path, None) or Rule(source=name, path=loaded.path)
            row.rule_uid = str(rule.id or loaded.path)
            row.title, row.level = rule.title, str(rule.level or "")
            row.status, row.tags = str(rule.status or ""), " ".join(str(t) for t in rule.tags)
            row.sha256, row.yaml = loaded.sha256, loaded.text
            row.error = failures.get(loaded.path)
            session.add(row)
        for failure in load.failures:
            row = existing.pop(failure.path, None) or Rule(source=name, path=failure.path)
            row.rule_uid, row.sha256, row.error = failure.path, "", failure.reason
            session.add(row)
        for stale in existing.values():
            session.delete(stale)
        session.add(
            AuditRecord(
                actor=actor, action="rules.import", detail=f"{name}: {len(load.rules)} rules"
            )
        )
    failed = len(failures)
    activate(db, settings)
    return ImportReport(name, len(load.rules), failed)


def _active_rows(db: Database) -> list[Rule]:
    with db.read() as session:
        return list(
            session.scalars(
                select(Rule).where(Rule.enabled, Rule.error.is_(None)).order_by(Rule.id)
            )
        )


def activate(db: Database, settings: Settings) -> str:
    """Compile the enabled rules, cache them, and make them the active set."""
    rows = _active_rows(db)
    digest = hashlib.sha256(ENGINE_VERSION.encode())
    for row in rows:
        digest.update(f"{row.id}:{row.sha256}\n".encode())
    active_hash = digest.hexdigest()[:16]
    cache = _rules_dir(settings) / f"compiled-{active_hash}.pkl"
    if not cache.exists():
        load = RuleLoad()
        for row in rows:
            load_document(row.path, row.yaml.encode(), load)
        row_ids = {row.rule_uid: row.id for row in reversed(rows)}
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps((compile_rules(load), row_ids), protocol=5))
        tmp.replace(cache)
    marker = _rules_dir(settings) / "active"
    marker.with_suffix(".tmp").write_text(active_hash)
    marker.with_suffix(".tmp").replace(marker)
    return active_hash


def load_active(settings: Settings, current: ActiveRules | None) -> ActiveRules | None:
    """The active compiled set (None when no rules are imported); cheap when unchanged."""
    marker = settings.home_dir / "rules" / "active"
    try:
        active_hash = marker.read_text().strip()
    except FileNotFoundError:
        return None
    if current is not None and current.hash == active_hash:
        return current
    cache = marker.parent / f"compiled-{active_hash}.pkl"
    ruleset, row_ids = pickle.loads(cache.read_bytes())
    return ActiveRules(active_hash, ruleset, row_ids)


@dataclass(frozen=True)
class RuleSelector:
    """Which rules an enable/disable applies to; every given criterion must hold."""

    rule_uids: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    path_glob: str | None = None  # e.g. "windows/process_creation/*"

    @property
    def empty(self) -> bool:
        return not (self.rule_uids or self.levels or self.statuses or self.path_glob)


def _glob_to_like(glob: str) -> str:
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def set_enabled(
    db: Database, settings: Settings, selector: RuleSelector, enabled: bool, actor: str = "cli"
) -> int:
    """Enable or disable the selected rules and re-activate the set; returns rules changed."""
    if selector.empty:
        raise CasescopeError("select rules by --id, --level, --status or --path")
    query = update(Rule).values(enabled=enabled)
    if selector.rule_uids:
        query = query.where(Rule.rule_uid.in_(selector.rule_uids))
    if selector.levels:
        query = query.where(Rule.level.in_(selector.levels))
    if selector.statuses:
        query = query.where(Rule.status.in_(selector.statuses))
    if selector.path_glob:
        query = query.where(Rule.path.like(_glob_to_like(selector.path_glob), escape="\\"))
    with db.session() as session:
        changed = session.execute(query.where(Rule.enabled != enabled)).rowcount or 0
        verb = "enable" if enabled else "disable"
        session.add(
            AuditRecord(actor=actor, action=f"rules.{verb}", events=changed, detail=repr(selector))
        )
    activate(db, settings)
    return changed


def list_rules(db: Database, *, failed: bool = False) -> list[Rule]:
    with db.read() as session:
        query = select(Rule).order_by(Rule.source, Rule.path)
        if failed:
            query = query.where(Rule.error.is_not(None))
        return list(session.scalars(query))

"""Sigma rule sets in the metadata DB: import, enable/disable, list, and the compiled active
set that workers load (`detect.active.ActiveRules`).

Rules live in the metadata DB with their YAML, so any worker can compile them. The active
set (enabled rules that compiled) has a content hash (`detect.ruleset_hash`: rule files,
engine and pipeline versions). Its compiled form is cached on disk as
`<home>/rules/compiled-<hash>.pkl` and the hash of the current one is in `<home>/rules/active`,
so a worker checks one small file per job and re-loads only when the set changed. Each
activated set's manifest (rule id -> content hash of the compiled rule) is kept in the
`rule_sets` table: a `sigma_only` run compares the file's last set with the active one and
evaluates only the rules that changed or are new.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import ColumnElement, func, literal, or_, select, update
from sqlalchemy.orm import Session

from casescope.config import Settings
from casescope.detect.active import ActiveRules
from casescope.detect.cache import ruleset_hash
from casescope.detect.engine import CompiledRuleSet, compile_rules
from casescope.detect.levels import SigmaLevel, SigmaStatus
from casescope.detect.load import LoadedRule, RuleLoad, load_document, load_rules
from casescope.detect.placeholders import Placeholders
from casescope.detect.ruleset_config import (
    RuleSetDefaults,
    aliases_for,
    read_defaults,
    read_eventkey_aliases,
    runs_as_written,
)
from casescope.errors import CasescopeError
from casescope.model.db import Database
from casescope.model.enums import AuditAction
from casescope.model.tables import AuditRecord, Rule, RuleSetManifest
from casescope.store.placeholders import placeholder_values
from casescope.store.rule_removal import RemovedRules, leaving_with, remove_rules

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportReport:
    source: str
    rules: int
    failed: int
    warned: int = 0  # loaded, with warnings (`rules list --warnings`)
    off: int = 0  # imported disabled: the rule set does not run them by default
    #: rules of the set the import no longer holds, and their hits
    removed: RemovedRules = field(default_factory=RemovedRules)


class UnknownRuleSet(CasescopeError):
    """No rule set has that name."""


def _rules_dir(settings: Settings) -> Path:
    path = settings.home_dir / "rules"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _row_path(path: str, used: dict[str, int]) -> str:
    """Row key of the next rule of a file: its path, then `path#2`, `path#3`, ..."""
    used[path] = used.get(path, 0) + 1
    return path if used[path] == 1 else f"{path}#{used[path]}"


def _file_path(row_path: str) -> str:
    return row_path.split("#", 1)[0]


def _describe(row: Rule, doc: Mapping[str, object], uid: str, loaded: LoadedRule | None) -> None:
    if loaded is not None:
        rule = loaded.rule
        row.title, row.level = rule.title, str(rule.level or "")
        row.status, row.tags = str(rule.status or ""), " ".join(loaded.tags)
        row.warnings = "\n".join(loaded.warnings) or None
        row.details = loaded.details
        row.aliases = json.dumps(loaded.aliases) if loaded.aliases else None
        row.as_written = loaded.as_written
    else:  # a correlation rule: its YAML document
        row.title, row.level = str(doc.get("title", uid)), str(doc.get("level") or "")
        tags = doc.get("tags") or []
        row.status = str(doc.get("status") or "")
        row.tags = " ".join(map(str, tags)) if isinstance(tags, list) else ""
        row.details, row.aliases = "", None
    row.rule_uid = uid


def compiled_id(row: Rule) -> str:
    """The id a rule row's compiled rule has: qualified by its rule set (`LoadedRule.uid`)."""
    return f"{row.source}:{row.rule_uid}"


def _attach(load: RuleLoad, source: str, aliases: dict[str, str], as_written: bool) -> None:
    """Mark a load's rules and correlations as `source`'s, with the set's field aliases and
    whether it runs its rules as written (`detect.ruleset_config`)."""
    for loaded in load.rules:
        loaded.source, loaded.as_written = source, as_written
        loaded.aliases = aliases_for(loaded.rule, aliases)
    for corr in load.correlations:
        corr.source = source


class _Rows:
    """The rows of one import: existing rows reused by key, new ones enabled as the rule
    set's defaults say (`detect.ruleset_config.read_defaults`)."""

    def __init__(self, session: Session, name: str, defaults: RuleSetDefaults) -> None:
        self.session, self.name, self.defaults = session, name, defaults
        query = select(Rule).where(Rule.source == name)
        self.existing = {r.path: r for r in session.scalars(query)}
        self.used: dict[str, int] = {}
        self.off = 0
        self.removed = RemovedRules()

    def row(self, path: str) -> Rule:
        key = _row_path(path, self.used)
        return self.existing.pop(key, None) or Rule(source=self.name, path=key)

    def add(self, row: Rule) -> None:
        if row.id is None and not self.defaults.enabled(row.rule_uid.lower(), row.status):
            row.enabled, self.off = False, self.off + 1
        self.session.add(row)

    def write(self, load: RuleLoad, failures: dict[str, str]) -> None:
        for loaded in load.rules:
            row = self.row(loaded.path)
            _describe(row, {}, loaded.sigma_id, loaded)
            row.sha256, row.yaml, row.error = loaded.sha256, loaded.text, failures.get(loaded.path)
            self.add(row)
        for corr in load.correlations:
            if corr.rule is None or corr.error:
                continue  # listed among the failures
            row = self.row(corr.path)
            uid = str(corr.rule.id or corr.path)  # as `CompiledCorrelation.id`
            _describe(row, corr.definition, uid, None)
            row.warnings = "\n".join(corr.warnings) or None
            row.sha256, row.yaml, row.error = corr.sha256, corr.text, failures.get(corr.path)
            self.add(row)
        for failure in load.failures:
            if failure.path in self.used:  # the file's rules carry the reason
                continue
            row = self.row(failure.path)
            row.rule_uid, row.sha256, row.error = failure.path, "", failure.reason
            self.session.add(row)
        stale = [row.id for row in self.existing.values()]
        self.session.flush()  # the reused rows first: the stale ones leave by statement
        self.removed = remove_rules(self.session, stale)


def import_rules(
    db: Database, settings: Settings, source: Path, name: str | None = None, actor: str = "cli"
) -> ImportReport:
    """Load a folder or zip of Sigma rules into the DB (replacing an import of that name).

    Each rule, correlation rule and failure is one row; the second and later rules of one
    file are keyed `path#2`, `path#3`, ... (the whole file's YAML is kept on each). A rule
    set's own config (Hayabusa's `config/`) gives its field aliases and the rules it does
    not run by default (imported disabled).
    """
    name = name or source.name
    load = load_rules(source)
    _attach(load, name, read_eventkey_aliases(source), runs_as_written(source))
    compiled = compile_rules(load, placeholder_values(db))
    failures: dict[str, str] = {}
    for failure in compiled.failures:
        failures.setdefault(failure.path, failure.reason)
    with db.session() as session:
        rows = _Rows(session, name, read_defaults(source))
        rows.write(load, failures)
        detail = f"{name}: {len(load.rules)} rules, {rows.off} off by the set's defaults"
        if rows.removed.rules:
            detail += f"; {rows.removed.describe()} (no longer in the set)"
        session.add(AuditRecord(actor=actor, action=AuditAction.RULES_IMPORT, detail=detail))
    activate(db, settings, fresh=(name, compiled))
    warned = sum(1 for r in load.rules if r.warnings) + sum(
        1 for c in load.correlations if c.warnings
    )
    count = len(load.rules) + len(load.correlations)
    return ImportReport(name, count, len(failures), warned, rows.off, rows.removed)


def _set_rule_ids(session: Session, name: str) -> list[int]:
    ids = list(session.scalars(select(Rule.id).where(Rule.source == name)))
    if not ids:
        raise UnknownRuleSet(f"no rule set is named {name!r} (see `casescope rules sets`)")
    return ids


def rule_set_leaving(db: Database, name: str) -> RemovedRules:
    """What deleting the rule set `name` would remove."""
    with db.read() as session:
        return leaving_with(session, _set_rule_ids(session, name))


def delete_rule_set(
    db: Database, settings: Settings, name: str, actor: str = "cli"
) -> RemovedRules:
    """Delete the rule set `name`: its rules and their hits in every case; the active set
    is compiled again without them."""
    with db.session() as session:
        removed = remove_rules(session, _set_rule_ids(session, name))
        detail = f"{name}: {removed.describe()}"
        record = AuditRecord(
            actor=actor, action=AuditAction.RULES_DELETE, events=removed.hits, detail=detail
        )
        session.add(record)
    activate(db, settings)
    logger.info("rule set %r deleted: %s", name, removed.describe())
    return removed


def _active_rows(db: Database) -> list[Rule]:
    with db.read() as session:
        return list(
            session.scalars(
                select(Rule).where(Rule.enabled, Rule.error.is_(None)).order_by(Rule.id)
            )
        )


def _compiled_paths(settings: Settings, active_hash: str) -> tuple[Path, Path]:
    base = _rules_dir(settings) / f"compiled-{active_hash}"
    return base.with_suffix(".pkl"), base.with_suffix(".ids.json")


def _compile_rows(rows: list[Rule], placeholders: Placeholders) -> CompiledRuleSet:
    """Compile the files of `rows` (each once), keeping only the rules and correlations of
    `rows` plus the rules those correlations reference."""
    files: dict[tuple[str, str], str] = {}
    aliases: dict[tuple[str, str], dict[str, str]] = {}
    written: dict[tuple[str, str], bool] = {}
    for row in rows:
        key = (row.source, _file_path(row.path))
        files.setdefault(key, row.yaml)
        aliases.setdefault(key, {}).update(json.loads(row.aliases or "{}"))
        written[key] = written.get(key, False) or bool(row.as_written)
    load = RuleLoad()
    for key, text in files.items():
        one = RuleLoad()
        load_document(key[1], text.encode(), one)
        _attach(one, key[0], aliases[key], written[key])
        load.extend(one)
    return _select(compile_rules(load, placeholders), rows)


def _select(compiled: CompiledRuleSet, rows: list[Rule]) -> CompiledRuleSet:
    """The rules and correlations of `rows` out of a compiled set holding all of their
    files, plus the rules those correlations reference."""
    wanted = {compiled_id(row) for row in rows}
    correlations = [c for c in compiled.correlations if c.id in wanted]
    wanted |= {rule_id for c in correlations for rule_id in c.rules}
    rules = [rule for rule in compiled.rules if rule.id in wanted]
    return CompiledRuleSet(rules, compiled.failures, compiled.atoms, correlations)


def activate(
    db: Database, settings: Settings, fresh: tuple[str, CompiledRuleSet] | None = None
) -> str:
    """Compile the enabled rules, cache them, record their manifest, make them active.

    `fresh`: (source name, the compiled whole import) when an import just compiled every
    file of that source; reused instead of compiling again when all enabled rules come
    from that source (compiling ~2,900 rules takes several seconds)."""
    rows = _active_rows(db)
    placeholders = placeholder_values(db)
    pairs = [(f"{row.source}/{row.path}", row.sha256) for row in rows]
    pairs.append(("placeholders", json.dumps(placeholders, sort_keys=True)))
    active_hash = ruleset_hash(pairs)
    pickle_path, ids_path = _compiled_paths(settings, active_hash)
    if not (pickle_path.exists() and ids_path.exists()):
        if fresh is not None and all(row.source == fresh[0] for row in rows):
            ruleset = _select(fresh[1], rows)
        else:
            ruleset = _compile_rows(rows, placeholders)
        ruleset.hash = active_hash
        ruleset.save(pickle_path)
        row_ids = {compiled_id(row): row.id for row in reversed(rows)}
        ids_path.with_suffix(".tmp").write_text(json.dumps(row_ids))
        ids_path.with_suffix(".tmp").replace(ids_path)
        _record_manifest(db, active_hash, ruleset)
    elif manifest_of(db, active_hash) is None:  # a cache from another DB
        _record_manifest(db, active_hash, CompiledRuleSet.load(pickle_path))
    marker = _rules_dir(settings) / "active"
    marker.with_suffix(".tmp").write_text(active_hash)
    marker.with_suffix(".tmp").replace(marker)
    return active_hash


def refresh_expanding_rules(db: Database, settings: Settings) -> int:
    """Re-check every rule that may use `|expand` placeholders against the current values
    (its error is set or cleared, as an import would) and re-activate the set; returns the
    rules whose error changed. Only the rules whose placeholders changed get a new content
    hash, so `rules run` re-evaluates only them."""
    placeholders = placeholder_values(db)
    changed = 0
    with db.session() as session:
        rows = list(session.scalars(select(Rule).where(Rule.yaml.contains("expand"))))
        by_source: dict[str, dict[str, str]] = {}
        written = {row.source for row in rows if row.as_written}
        for row in rows:
            by_source.setdefault(row.source, {}).setdefault(_file_path(row.path), row.yaml)
        failures: dict[tuple[str, str], str] = {}
        for source, files in by_source.items():
            load = RuleLoad()
            for path, text in files.items():
                load_document(path, text.encode(), load)
            _attach(load, source, {}, source in written)
            for failure in compile_rules(load, placeholders).failures:
                failures.setdefault((source, failure.path), failure.reason)
        for row in rows:
            error = failures.get((row.source, _file_path(row.path)))
            if error != row.error:
                row.error, changed = error, changed + 1
    activate(db, settings)
    return changed


def _record_manifest(db: Database, active_hash: str, ruleset: CompiledRuleSet) -> None:
    manifest = {rule.id: rule.content_hash for rule in ruleset.rules}
    with db.session() as session:
        if session.get(RuleSetManifest, active_hash) is None:
            session.add(RuleSetManifest(hash=active_hash, rules=json.dumps(manifest)))


def manifest_of(db: Database, ruleset_hash_: str | None) -> dict[str, str] | None:
    """The manifest of an activated set (None if unknown: evaluate everything)."""
    if not ruleset_hash_:
        return None
    with db.read() as session:
        row = session.get(RuleSetManifest, ruleset_hash_)
        return json.loads(row.rules) if row is not None else None


def load_active(settings: Settings, current: ActiveRules | None) -> ActiveRules | None:
    """The active compiled set (None when no rules are imported); cheap when unchanged."""
    marker = settings.home_dir / "rules" / "active"
    try:
        active_hash = marker.read_text().strip()
    except FileNotFoundError:
        return None
    if current is not None and current.hash == active_hash:
        return current
    pickle_path, ids_path = _compiled_paths(settings, active_hash)
    ruleset = CompiledRuleSet.load(pickle_path)
    return ActiveRules(active_hash, ruleset, json.loads(ids_path.read_text()))


@dataclass(frozen=True)
class RuleSelector:
    """Which rules an enable/disable applies to; every given criterion must hold."""

    rule_uids: tuple[str, ...] = ()
    levels: tuple[SigmaLevel, ...] = ()
    statuses: tuple[SigmaStatus, ...] = ()
    path_glob: str | None = None  # e.g. "windows/process_creation/*"
    #: A rule carrying any of these tags (as written: `attack.t1059`, `attack.execution`).
    tags: tuple[str, ...] = ()
    #: Rules of these rule sets (the import's name); alone, it selects no rule.
    sources: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        # A rule set alone is not a selection: "disable set X" is a separate, explicit choice
        # of every rule, made by naming a level, status, tag, path or id as well.
        return not (self.rule_uids or self.levels or self.statuses or self.path_glob or self.tags)


def _glob_to_like(glob: str) -> str:
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def tag_condition(tags: tuple[str, ...]) -> ColumnElement[bool]:
    """Rules carrying any of `tags` (the column is space separated; matched case-blind; `*`
    in a tag matches any text: `attack.t1059*`)."""
    padded = literal(" ").concat(func.lower(Rule.tags)).concat(" ")
    return or_(*(padded.like(f"% {_glob_to_like(t.lower())} %", escape="\\") for t in tags))


def set_enabled(
    db: Database, settings: Settings, selector: RuleSelector, enabled: bool, actor: str = "cli"
) -> int:
    """Enable or disable the selected rules and re-activate the set; returns rules changed."""
    if selector.empty:
        raise CasescopeError("select rules by --id, --level, --status, --tag or --path")
    query = update(Rule).values(enabled=enabled)
    if selector.sources:
        query = query.where(Rule.source.in_(selector.sources))
    if selector.tags:
        query = query.where(tag_condition(selector.tags))
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
        action = AuditAction.RULES_ENABLE if enabled else AuditAction.RULES_DISABLE
        session.add(AuditRecord(actor=actor, action=action, events=changed, detail=repr(selector)))
    activate(db, settings)
    return changed


def list_rules(db: Database, *, failed: bool = False, warned: bool = False) -> list[Rule]:
    """Imported rules; `failed`: only those that cannot run; `warned`: only those loaded
    with warnings (what had to be fixed for pySigma, `detect.normalise`)."""
    with db.read() as session:
        query = select(Rule).order_by(Rule.source, Rule.path)
        if failed:
            query = query.where(Rule.error.is_not(None))
        if warned:
            query = query.where(Rule.warnings.is_not(None))
        return list(session.scalars(query))

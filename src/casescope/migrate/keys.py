"""New keys for a case brought into a deployment that holds data: `migrate run --as` and
every `case import` (docs/bundles.md, "Keys").

A plain migration keeps keys. A case brought in beside others cannot: its ids are taken
there. So each copied table's keys move up by an offset (the target's largest key when
the copy began), and every column that points at a moved key (foreign keys, and the
columns that name a case, file, job or exclusion without one) moves with it. Rows the
target already has by their natural key are not copied but pointed at: users by name,
rules by (set, path, sha256), segments by (sha256, parser version, variant), Sigma
placeholders by name (the target's values stay). Rule-set manifests are left out (their
rule ids are the source's): the case's files lose their `sigma_ruleset`, so the next
`sigma_only` run evaluates every rule on them.

The map is computed once, stored as JSON in a checkpoint of the target (`KEYMAP`), and
read back by a resumed run and by `verify`, so every run of one copy uses the same keys.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Table, func, select

from casescope.migrate.checkpoints import Where, checkpoint
from casescope.migrate.endpoints import Source
from casescope.migrate.phases import NO_CASE, TABLE_PHASES, Phase, key_column, units
from casescope.model.db import Database
from casescope.model.migration import MigrationCheckpoint
from casescope.model.tables import Base, DeletedCase

logger = logging.getLogger(__name__)

#: The checkpoint (phase config, unit 0) whose `last_key` holds the map.
KEYMAP = "keymap"

#: Columns that name another table's row without a declared foreign key.
UNDECLARED: dict[tuple[str, str], str] = {
    ("detections", "case_id"): "cases",
    ("detections", "excluded_by"): "exclusions",
    ("ioc_hits", "case_id"): "cases",
    ("event_marks", "file_id"): "evidence_files",
    ("event_notes", "file_id"): "evidence_files",
    ("story_items", "file_id"): "evidence_files",
    ("audit", "case_id"): "cases",
    ("audit", "file_id"): "evidence_files",
    ("audit", "job_id"): "jobs",
}

#: Natural keys of the tables whose rows are pointed at when the target has them.
NATURAL: dict[str, tuple[str, ...]] = {
    "users": ("username",),
    "api_tokens": ("token_hash",),
    # a rule set's rule at one path is the same rule, whichever revision each side has
    "rules": ("source", "path"),
    "segments": ("sha256", "parser_version", "variant"),
}
#: Tables not copied at all when keys move (see the module doc).
LEFT_OUT = frozenset({"rule_sets"})
#: Tables whose rows the target keeps when it has their key (a string: not moved).
TARGET_WINS = frozenset({"sigma_placeholders"})


def references(table: Table) -> dict[str, str]:
    """Column -> the table whose key it names."""
    found = {
        fk.parent.name: fk.column.table.name
        for fk in table.foreign_keys
        if fk.parent.table is table
    }
    found.update({col: ref for (name, col), ref in UNDECLARED.items() if name == table.name})
    return found


@dataclass
class KeyMap:
    #: Table -> what its keys move up by.
    offsets: dict[str, int] = field(default_factory=dict)
    #: Table -> source key -> the target's key of the same natural key.
    matched: dict[str, dict[int, int]] = field(default_factory=dict)

    def key(self, table: str, value: int | None) -> int | None:
        if value is None:
            return None
        found = self.matched.get(table, {}).get(value)
        return found if found is not None else value + self.offsets.get(table, 0)

    def copied(self, table: str, value: Any) -> bool:
        """Whether the row of this key is copied (not pointed at, not left out)."""
        return table not in LEFT_OUT and value not in self.matched.get(table, {})

    def row(self, table: Table, row: Mapping[str, Any], target_home: Path) -> dict | None:
        """The row as the target stores it under moved keys; None: not copied."""
        key = key_column(table).name
        if not self.copied(table.name, row[key]):
            return None
        out = dict(row)
        if table.name in self.offsets:
            out[key] = self.key(table.name, row[key])
        for column, ref in references(table).items():
            out[column] = self.key(ref, out[column])
        if table.name == "evidence_files":
            out["sigma_ruleset"] = None
            out["stored_path"] = str(self.evidence_path(out["case_id"], out["sha256"], target_home))
        if table.name == "detections" and out.get("fields"):
            out["fields"] = self._correlation(out["fields"])
        return out

    @staticmethod
    def evidence_path(case_id: int, sha256: str, home: Path) -> Path:
        """Where the evidence store keeps a case's file (`evidence.store.publish`)."""
        return home / "evidence" / str(case_id) / sha256[:2] / sha256

    def _correlation(self, fields: str) -> str:
        """A correlation hit names the detections it groups: by their moved keys."""
        value = orjson.loads(fields)
        if isinstance(value, dict) and isinstance(value.get("detections"), list):
            value["detections"] = [self.key("detections", d) for d in value["detections"]]
            return orjson.dumps(value).decode()
        return fields

    def to_json(self) -> str:
        return orjson.dumps(
            {"offsets": self.offsets, "matched": self.matched}, option=orjson.OPT_NON_STR_KEYS
        ).decode()

    @classmethod
    def from_json(cls, text: str) -> KeyMap:
        value = orjson.loads(text)
        matched = {t: {int(k): v for k, v in m.items()} for t, m in value["matched"].items()}
        return cls(dict(value["offsets"]), matched)


def _int_keyed(table: Table) -> bool:
    column = key_column(table)
    return column.type.python_type is int


def _offsets(target: Database) -> dict[str, int]:
    offsets = {}
    with target.read() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in TABLE_PHASES and _int_keyed(table):
                offsets[table.name] = session.scalar(select(func.max(key_column(table)))) or 0
        # a deleted case's id is never given again (model.tables.DeletedCase)
        deleted = session.scalar(select(func.max(DeletedCase.id))) or 0
    offsets["cases"] = max(offsets["cases"], deleted)
    return offsets


def _matches(source: Source, target: Database, table: Table, case_ids: list[int]) -> dict:
    names = NATURAL[table.name]
    key = key_column(table)
    columns = [key, *(table.c[name] for name in names)]
    with source.engine.connect() as connection:
        mine = {
            tuple(row[1:]): row[0]
            for _unit, condition in units(table, case_ids)
            for row in connection.execute(select(*columns).where(condition))
        }
    with target.read() as session:
        theirs = {tuple(row[1:]): row[0] for row in session.execute(select(*columns))}
    return {mine[natural]: theirs[natural] for natural in mine if natural in theirs}


def compute(source: Source, target: Database, case_ids: list[int]) -> KeyMap:
    tables = {table.name: table for table in Base.metadata.sorted_tables}
    matched = {name: _matches(source, target, tables[name], case_ids) for name in NATURAL}
    return KeyMap(_offsets(target), matched)


def keymap_for(source: Source, target: Database, source_id: str, case_ids: list[int]) -> KeyMap:
    """The copy's key map: the stored one, or computed now and stored."""
    where = Where(source_id, Phase.CONFIG, KEYMAP, NO_CASE)
    with target.session() as session:
        mark = checkpoint(session, where)
        if mark.last_key is not None:
            return KeyMap.from_json(mark.last_key)
        keymap = compute(source, target, case_ids)
        mark.last_key = keymap.to_json()
        mark.done = True
    logger.info("keys move up by %s", keymap.offsets)
    return keymap


def stored_keymap(target: Database, source_id: str) -> KeyMap | None:
    """The key map a copy from `source_id` stored, if it moved keys."""
    with target.read() as session:
        text = session.scalar(
            select(MigrationCheckpoint.last_key).where(
                MigrationCheckpoint.source == source_id,
                MigrationCheckpoint.phase == Phase.CONFIG.value,
                MigrationCheckpoint.table_name == KEYMAP,
            )
        )
    return None if text is None else KeyMap.from_json(text)

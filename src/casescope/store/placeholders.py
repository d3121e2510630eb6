"""Values of Sigma `|expand` placeholders in the metadata DB (`sigma_placeholders`).

One row per placeholder name; every rule that uses `%name%` gets the same values. Changing
them is audited; re-checking the rules that use them and re-activating the set is
`store.rulesets.refresh_expanding_rules` (called by `services.placeholders`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from casescope.errors import CasescopeError
from casescope.model.db import Database
from casescope.model.enums import AuditAction
from casescope.model.tables import AuditRecord, SigmaPlaceholder, utcnow

logger = logging.getLogger(__name__)

NAME_RE = re.compile(r"[A-Za-z0-9_.\-]{1,100}")
MAX_VALUES = 10_000


class PlaceholderError(CasescopeError):
    """A placeholder name or value list that cannot be stored."""


@dataclass(frozen=True)
class PlaceholderValues:
    name: str
    values: tuple[str, ...]
    updated_by: str
    updated_at: datetime


def check_name(name: str) -> str:
    """`%known_cdcs%` or `known_cdcs` -> `known_cdcs`; a clear error for anything else."""
    bare = name.strip().strip("%")
    if not NAME_RE.fullmatch(bare):
        raise PlaceholderError(
            f"{name!r} is not a placeholder name (letters, digits and _ . - only)"
        )
    return bare


def placeholder_values(db: Database) -> dict[str, list[str]]:
    """Every placeholder with its values (what the compiler substitutes)."""
    with db.read() as session:
        rows = session.scalars(select(SigmaPlaceholder).order_by(SigmaPlaceholder.name))
        return {row.name: list(json.loads(row.values)) for row in rows}


def list_placeholders(db: Database) -> list[PlaceholderValues]:
    with db.read() as session:
        rows = session.scalars(select(SigmaPlaceholder).order_by(SigmaPlaceholder.name))
        return [
            PlaceholderValues(r.name, tuple(json.loads(r.values)), r.updated_by, r.updated_at)
            for r in rows
        ]


def store_values(db: Database, name: str, values: Sequence[str] | None, actor: str) -> bool:
    """Set (or with None, remove) one placeholder's values; whether anything changed."""
    name = check_name(name)
    if values is not None:
        values = [v for v in (str(v).strip() for v in values) if v]
        if not values:
            raise PlaceholderError(f"give at least one value for %{name}%")
        if len(values) > MAX_VALUES:
            raise PlaceholderError(f"%{name}% takes at most {MAX_VALUES:,} values")
    with db.session() as session:
        row = session.get(SigmaPlaceholder, name)
        if values is None:
            if row is None:
                return False
            session.delete(row)
            detail = f"%{name}% unset"
        else:
            text = json.dumps(list(values))
            if row is not None and row.values == text:
                return False
            row = row or SigmaPlaceholder(name=name)
            row.values, row.updated_by, row.updated_at = text, actor, utcnow()
            session.add(row)
            detail = f"%{name}% = {len(values)} values"
        session.add(AuditRecord(actor=actor, action=AuditAction.RULES_PLACEHOLDERS, detail=detail))
    logger.info("placeholder %s changed by %s", name, actor)
    return True

"""Saved searches and search history: per user and per case, in the `saved_searches` table.

A row with `saved=True` is a named search the user keeps; `saved=False` rows are the history
(every first page searched), pruned to the latest `HISTORY_KEEP`. Both store the search form
as JSON, including its filter pills, sort and extra columns (which belong to that search
only: a later search does not inherit them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, select

from casescope.errors import CasescopeError
from casescope.model.db import Database
from casescope.model.users import SavedSearch

HISTORY_KEEP = 50
MAX_SAVED_PER_CASE = 200


@dataclass(frozen=True)
class Owner:
    """Whose searches: one user in one case."""

    user_id: int
    case_id: int


@dataclass(frozen=True)
class StoredSearch:
    id: int
    name: str
    params: dict[str, Any]
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "params": self.params,
            "created_at": self.created_at.isoformat(),
        }


def _stored(row: SavedSearch) -> StoredSearch:
    return StoredSearch(row.id, row.name, orjson.loads(row.params), row.created_at)


def _mine(owner: Owner, saved: bool) -> list:
    return [
        SavedSearch.user_id == owner.user_id,
        SavedSearch.case_id == owner.case_id,
        SavedSearch.saved.is_(saved),
    ]


def save_search(db: Database, owner: Owner, name: str, params: dict[str, Any]) -> StoredSearch:
    """Keep a named search; the same name again replaces the earlier one."""
    name = name.strip()
    if not name or len(name) > 200:
        raise CasescopeError("a saved search needs a name of 1-200 characters")
    with db.session() as session:
        session.execute(delete(SavedSearch).where(*_mine(owner, True), SavedSearch.name == name))
        count = len(session.scalars(select(SavedSearch.id).where(*_mine(owner, True))).all())
        if count >= MAX_SAVED_PER_CASE:
            raise CasescopeError(f"at most {MAX_SAVED_PER_CASE} saved searches per case")
        row = SavedSearch(
            user_id=owner.user_id,
            case_id=owner.case_id,
            name=name,
            params=orjson.dumps(params).decode(),
            saved=True,
        )
        session.add(row)
        session.flush()
        return _stored(row)


def list_saved(db: Database, owner: Owner) -> list[StoredSearch]:
    with db.read() as session:
        rows = session.scalars(
            select(SavedSearch).where(*_mine(owner, True)).order_by(SavedSearch.name)
        ).all()
        return [_stored(row) for row in rows]


def get_saved(db: Database, owner: Owner, search_id: int) -> StoredSearch:
    """One of the owner's saved searches; another user's (or case's) is 'not found'."""
    with db.read() as session:
        row = session.scalar(
            select(SavedSearch).where(*_mine(owner, True), SavedSearch.id == search_id)
        )
        if row is None:
            raise LookupError(f"no saved search {search_id}")
        return _stored(row)


def delete_saved(db: Database, owner: Owner, search_id: int) -> None:
    with db.session() as session:
        done = session.execute(
            delete(SavedSearch).where(*_mine(owner, True), SavedSearch.id == search_id)
        ).rowcount
    if not done:
        raise LookupError(f"no saved search {search_id}")


def record_history(db: Database, owner: Owner, params: dict[str, Any]) -> None:
    """Append one search to the history (a repeat of the latest is not added twice)."""
    text = orjson.dumps(params).decode()
    with db.session() as session:
        ids = session.scalars(
            select(SavedSearch.id).where(*_mine(owner, False)).order_by(SavedSearch.id.desc())
        ).all()
        latest = session.get(SavedSearch, ids[0]) if ids else None
        if latest is not None and latest.params == text:
            return
        session.add(
            SavedSearch(
                user_id=owner.user_id, case_id=owner.case_id, params=text, saved=False, name=""
            )
        )
        stale = ids[HISTORY_KEEP - 1 :]
        if stale:
            session.execute(delete(SavedSearch).where(SavedSearch.id.in_(stale)))


def history(db: Database, owner: Owner, limit: int = 10) -> list[StoredSearch]:
    """The owner's latest searches, newest first."""
    with db.read() as session:
        rows = session.scalars(
            select(SavedSearch)
            .where(*_mine(owner, False))
            .order_by(SavedSearch.id.desc())
            .limit(max(1, min(limit, HISTORY_KEEP)))
        ).all()
        return [_stored(row) for row in rows]

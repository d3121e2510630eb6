"""Saved searches and search history: per user and per case, in the `saved_searches` table.

A row with `saved=True` is a named search the user keeps; `saved=False` rows are the history
(every first page searched), pruned to the latest `HISTORY_KEEP`. Both store the search form
as JSON, including its filter pills, sort and extra columns (which belong to that search
only: a later search does not inherit them).

A saved search may be `shared` with the case: everyone who can open the case then lists and
runs it, and only its owner or an admin renames, unshares or deletes it. An unshared search
stays its owner's alone (another user, an admin included, is told there is no such search).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from casescope.errors import CasescopeError
from casescope.model.db import Database
from casescope.model.users import SavedSearch, User

HISTORY_KEEP = 50
MAX_SAVED_PER_CASE = 200
MAX_NAME = 200


class NotYours(CasescopeError):
    """A shared search of another user: it may be run, not changed."""


@dataclass(frozen=True)
class Owner:
    """Whose searches: one user in one case (`admin`: may change others' shared ones)."""

    user_id: int
    case_id: int
    admin: bool = False


@dataclass(frozen=True)
class StoredSearch:
    id: int
    name: str
    params: dict[str, Any]
    created_at: datetime
    shared: bool = False
    owner: str = ""
    #: Whether the caller may rename, share/unshare or delete it (its owner, or an admin).
    editable: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "params": self.params,
            "created_at": self.created_at.isoformat(),
            "shared": self.shared,
            "owner": self.owner,
        }


def _stored(row: SavedSearch, owner_name: str = "", caller: Owner | None = None) -> StoredSearch:
    editable = caller is None or caller.admin or caller.user_id == row.user_id
    return StoredSearch(
        row.id,
        row.name,
        orjson.loads(row.params),
        row.created_at,
        shared=bool(row.shared),
        owner=owner_name,
        editable=editable,
    )


def _visible(owner: Owner) -> list:
    """The saved searches `owner` sees in the case: their own and the shared ones."""
    return [
        SavedSearch.case_id == owner.case_id,
        SavedSearch.saved.is_(True),
        or_(SavedSearch.user_id == owner.user_id, SavedSearch.shared.is_(True)),
    ]


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise CasescopeError(f"a saved search needs a name of 1-{MAX_NAME} characters")
    return name


def _mine(owner: Owner, saved: bool) -> list:
    return [
        SavedSearch.user_id == owner.user_id,
        SavedSearch.case_id == owner.case_id,
        SavedSearch.saved.is_(saved),
    ]


def save_search(
    db: Database, owner: Owner, name: str, params: dict[str, Any], *, shared: bool = False
) -> StoredSearch:
    """Keep a named search; the same name again replaces the owner's earlier one."""
    name = _check_name(name)
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
            shared=shared,
        )
        session.add(row)
        session.flush()
        return _stored(row, _username(session, owner.user_id), owner)


def _username(session: Session, user_id: int) -> str:
    return session.scalar(select(User.username).where(User.id == user_id)) or ""


def list_saved(db: Database, owner: Owner) -> list[StoredSearch]:
    """The owner's saved searches and those shared with the case, by name then owner."""
    with db.read() as session:
        rows = session.execute(
            select(SavedSearch, User.username)
            .join(User, User.id == SavedSearch.user_id)
            .where(*_visible(owner))
            .order_by(SavedSearch.name, User.username)
        ).all()
        return [_stored(row, name, owner) for row, name in rows]


def _visible_row(session: Session, owner: Owner, search_id: int) -> SavedSearch:
    row = session.scalar(select(SavedSearch).where(*_visible(owner), SavedSearch.id == search_id))
    if row is None:
        raise LookupError(f"no saved search {search_id}")
    return row


def get_saved(db: Database, owner: Owner, search_id: int) -> StoredSearch:
    """One of the owner's saved searches or one shared with the case; another user's
    unshared one (or another case's) is 'not found'."""
    with db.read() as session:
        row = _visible_row(session, owner, search_id)
        return _stored(row, _username(session, row.user_id), owner)


def _editable_row(session: Session, owner: Owner, search_id: int) -> SavedSearch:
    """A visible search the caller may change (LookupError: not visible; NotYours: shared by
    another user and the caller is not an admin)."""
    row = _visible_row(session, owner, search_id)
    if row.user_id != owner.user_id and not owner.admin:
        raise NotYours("only its owner or an admin may change a shared search")
    return row


def delete_saved(db: Database, owner: Owner, search_id: int) -> StoredSearch:
    """Delete a search the caller may change; what it was."""
    with db.session() as session:
        row = _editable_row(session, owner, search_id)
        gone = _stored(row, _username(session, row.user_id), owner)
        session.delete(row)
        return gone


def update_saved(
    db: Database, owner: Owner, search_id: int, name: str | None, shared: bool | None
) -> StoredSearch:
    """Rename a search and/or share or unshare it (its owner or an admin)."""
    with db.session() as session:
        row = _editable_row(session, owner, search_id)
        if name is not None:
            row.name = _check_name(name)
        if shared is not None:
            row.shared = shared
        session.flush()
        return _stored(row, _username(session, row.user_id), owner)


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

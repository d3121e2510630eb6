"""Users of the web app: create, authenticate (argon2), and per-case access.

Changing an account (disable, delete, password, role) is in services/accounts.py.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import available_timezones

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from casescope.errors import CasescopeError, NotFoundError
from casescope.model.db import Database
from casescope.model.enums import AuditAction
from casescope.model.tables import AuditRecord, Case
from casescope.model.users import CaseAccess, Role, User

MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()
#: Verified against when the user name is unknown, so both paths cost one argon2 check: a
#: hash made with `_hasher`'s parameters (a test checks they still match), written out
#: rather than computed at import, which cost every importer an argon2 hash (~0.1-0.5 s).
_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$pQNXo1TKW5qoEIQ1J6r3/Q$"
    "i0LpNjURYaBZD6jsBsWne+66Lu+jMLqhylMZ7Pn7WAo"
)


MAX_PASSWORD_LENGTH = 1000


@dataclass(frozen=True)
class UserInfo:
    id: int
    username: str
    role: Role
    active: bool
    must_change_password: bool = False
    last_login_at: datetime | None = None
    timezone: str = "UTC"

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "username": self.username,
            "role": self.role.value,
            "active": self.active,
            "must_change_password": self.must_change_password,
            "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None,
            "timezone": self.timezone,
        }


def user_info(user: User) -> UserInfo:
    return UserInfo(
        user.id,
        user.username,
        Role(user.role),
        user.active,
        bool(user.must_change_password),
        user.last_login_at,
        user.timezone or "UTC",
    )


@functools.cache
def time_zones() -> frozenset[str]:
    """The IANA zone names this machine knows (a user's choice is checked against them, never
    handed to the file system as a path)."""
    return frozenset(available_timezones()) | {"UTC"}


def check_timezone(name: str) -> str:
    """An IANA zone name (`Europe/Berlin`, `UTC`), or a clear error."""
    if name not in time_zones():
        raise CasescopeError(f"unknown time zone: {name[:80]!r} (an IANA name, e.g. Europe/Berlin)")
    return name


def set_timezone(db: Database, user_id: int, name: str) -> None:
    """The zone the web app shows this user's times in."""
    check_timezone(name)
    with db.session() as session:
        user = session.get(User, user_id)
        if user is None:
            raise NotFoundError(f"no user {user_id}")
        user.timezone = name


def _utf8(password: str) -> bytes:
    # surrogatepass: a password holding a lone surrogate is checked (and fails), not a crash
    return password.encode("utf-8", "surrogatepass")


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise CasescopeError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise CasescopeError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise CasescopeError("a password must be valid text (UTF-8)") from None


def hash_password(password: str) -> str:
    """The argon2 hash of a password that passed `check_password`."""
    check_password(password)
    return _hasher.hash(password)


def password_matches(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, _utf8(password))
    except (VerificationError, InvalidHashError):
        return False


def count_users(db: Database) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(User)) or 0


def check_username(username: str) -> str:
    username = username.strip()
    if not username or len(username) > 100 or any(c.isspace() for c in username):
        raise CasescopeError("a user name is 1-100 characters without spaces")
    if not username.isprintable():
        raise CasescopeError("a user name has no control characters")
    return username


def create_user(
    db: Database,
    username: str,
    password: str,
    role: Role,
    actor: str = "cli",
    *,
    must_change_password: bool = False,
) -> UserInfo:
    """A new active user; `must_change_password` makes the first login change it."""
    username = check_username(username)
    password_hash = hash_password(password)
    try:
        with db.session() as session:
            user = User(
                username=username,
                password_hash=password_hash,
                role=role,
                must_change_password=must_change_password,
            )
            session.add(user)
            session.flush()
            session.add(
                AuditRecord(
                    actor=actor, action=AuditAction.USER_CREATE, detail=f"{username} ({role})"
                )
            )
            return user_info(user)
    except IntegrityError:
        raise CasescopeError(f"a user named {username!r} already exists") from None


def authenticate(db: Database, username: str, password: str) -> UserInfo | None:
    """The active user with this name and password, or None (constant work either way)."""
    with db.read() as session:
        user = session.scalar(select(User).where(User.username == username))
    stored = user.password_hash if user is not None else _DUMMY_HASH
    if not password_matches(stored, password):
        return None
    if user is None or not user.active:
        return None
    return user_info(user)


def get_by_name(db: Database, username: str) -> UserInfo:
    """The user (active or not) with this name; NotFoundError otherwise."""
    with db.read() as session:
        user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFoundError(f"no user named {username!r}")
    return user_info(user)


def get_user(db: Database, user_id: int) -> UserInfo | None:
    with db.read() as session:
        user = session.get(User, user_id)
    return user_info(user) if user is not None and user.active else None


def list_users(db: Database) -> list[UserInfo]:
    with db.read() as session:
        return [user_info(u) for u in session.scalars(select(User).order_by(User.id))]


def grant_case(db: Database, username: str, case_id: int, actor: str = "cli") -> None:
    """Give a user access to one case (idempotent)."""
    with db.session() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFoundError(f"no user named {username!r}")
        if session.get(Case, case_id) is None:
            raise NotFoundError(f"no case {case_id}")
        exists = session.scalar(
            select(CaseAccess.id).where(
                CaseAccess.user_id == user.id, CaseAccess.case_id == case_id
            )
        )
        if exists is None:
            session.add(CaseAccess(user_id=user.id, case_id=case_id))
            session.add(
                AuditRecord(
                    actor=actor, action=AuditAction.CASE_GRANT, case_id=case_id, detail=username
                )
            )


def revoke_case(db: Database, username: str, case_id: int, actor: str = "cli") -> None:
    with db.session() as session:
        user_id = session.scalar(select(User.id).where(User.username == username))
        if user_id is None:
            raise NotFoundError(f"no user named {username!r}")
        session.execute(
            delete(CaseAccess).where(CaseAccess.user_id == user_id, CaseAccess.case_id == case_id)
        )
        session.add(
            AuditRecord(
                actor=actor, action=AuditAction.CASE_REVOKE, case_id=case_id, detail=username
            )
        )


def accessible_case_ids(db: Database, user: UserInfo) -> set[int] | None:
    """The case ids this user may open; None means every case (admins)."""
    if user.role is Role.ADMIN:
        return None
    with db.read() as session:
        return set(session.scalars(select(CaseAccess.case_id).where(CaseAccess.user_id == user.id)))


def can_access(db: Database, user: UserInfo, case_id: int) -> bool:
    allowed = accessible_case_ids(db, user)
    return allowed is None or case_id in allowed

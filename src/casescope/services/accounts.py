"""Changing accounts: disable, enable, delete, reset or change a password, change a role, and
the login/logout record. Used alike by `casescope user …` and the admin API.

- A disabled or deleted user's sessions end at once (deleted here) and their API tokens stop
  working at once (every request looks the user up; a disabled user is refused). Enabling the
  user again makes their unexpired, unrevoked tokens work again; sessions do not come back.
- An admin's password reset sets a new password (given, or generated and returned once), ends
  every session of the user and marks the account "must change password": the next login
  may do nothing but change it. API tokens are kept (revoke them, or disable the user, when
  the account is compromised).
- A user changing their own password ends their other sessions (the current one stays).
- The last active admin cannot be disabled, demoted or deleted.
- Deleting a user removes the row and what is private to it (sessions, tokens, case grants,
  saved searches and search history: nobody else could open them). What the user did stays:
  audit rows and event marks keep the user's name as their author, as text.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from casescope.errors import CasescopeError, NotFoundError
from casescope.model.db import Database
from casescope.model.enums import AuditAction
from casescope.model.tables import AuditRecord
from casescope.model.users import Role, User
from casescope.services.auth import end_sessions
from casescope.services.users import UserInfo, hash_password, password_matches, user_info

logger = logging.getLogger(__name__)

#: Characters of a generated temporary password (about 120 bits).
GENERATED_PASSWORD_BYTES = 15


class LastAdminError(CasescopeError):
    """The change would leave no active admin."""


class WrongPasswordError(CasescopeError):
    """The current password given to change it is not the user's."""


def _audit(session: Session, actor: str, action: AuditAction, detail: str) -> None:
    session.add(AuditRecord(actor=actor[:100], action=action, detail=detail[:2000]))


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFoundError(f"no user named {username!r}")
    return user


def _keep_an_admin(session: Session, user: User, change: str) -> None:
    """Refuse `change` to an active admin when no other active admin exists.

    The other admins' rows are locked (PostgreSQL) so two admins cannot demote each other at
    once; SQLite writers are serialised by BEGIN IMMEDIATE."""
    if user.role is not Role.ADMIN or not user.active:
        return
    others = session.scalars(
        select(User.id)
        .where(User.role == Role.ADMIN, User.active.is_(True), User.id != user.id)
        .with_for_update()
    ).all()
    if not others:
        raise LastAdminError(
            f"{user.username} is the last active admin and cannot be {change}; "
            "make another user admin first"
        )


def set_active(db: Database, username: str, active: bool, actor: str = "cli") -> UserInfo:
    """Enable or disable a user; disabling ends every session of the user at once."""
    with db.session() as session:
        user = _user(session, username)
        if not active:
            _keep_an_admin(session, user, "disabled")
            ended = end_sessions(session, user.id)
            logger.info("disabled user %s (%d sessions ended)", username, ended)
        user.active = active
        action = AuditAction.USER_ENABLE if active else AuditAction.USER_DISABLE
        _audit(session, actor, action, username)
        return user_info(user)


def delete_user(db: Database, username: str, actor: str = "cli") -> None:
    """Delete a user (see the module docstring for what goes and what stays)."""
    with db.session() as session:
        user = _user(session, username)
        _keep_an_admin(session, user, "deleted")
        end_sessions(session, user.id)
        session.delete(user)  # tokens, grants, saved searches: ON DELETE CASCADE
        _audit(session, actor, AuditAction.USER_DELETE, username)


def set_role(db: Database, username: str, role: Role, actor: str = "cli") -> UserInfo:
    """Change a user's role; it applies to their next request."""
    with db.session() as session:
        user = _user(session, username)
        if role is not Role.ADMIN:
            _keep_an_admin(session, user, "demoted")
        user.role = role
        _audit(session, actor, AuditAction.USER_ROLE, f"{username} {role.value}")
        return user_info(user)


def reset_password(
    db: Database, username: str, password: str | None = None, actor: str = "cli"
) -> str | None:
    """Set a new password the user must change at their next login; ends their sessions.

    Returns the generated password when none was given (shown once), else None."""
    generated = None if password else secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
    password_hash = hash_password(password or generated or "")
    with db.session() as session:
        user = _user(session, username)
        user.password_hash = password_hash
        user.must_change_password = True
        ended = end_sessions(session, user.id)
        _audit(session, actor, AuditAction.USER_PASSWORD_RESET, username)
    logger.info("password of %s reset (%d sessions ended)", username, ended)
    return generated


def change_password(
    db: Database, user_id: int, current: str, new: str, keep_session: str | None
) -> None:
    """The user's own change: checks the current password, ends the user's other sessions
    (all but the one whose hash is `keep_session`) and lifts "must change password"."""
    if new == current:
        raise CasescopeError("choose a new password, not the current one")
    password_hash = hash_password(new)
    with db.session() as session:
        user = session.get(User, user_id)
        if user is None or not user.active:
            raise NotFoundError("no such user")
        if not password_matches(user.password_hash, current):
            raise WrongPasswordError("the current password is wrong")
        user.password_hash = password_hash
        user.must_change_password = False
        end_sessions(session, user.id, keep_hash=keep_session)
        _audit(session, f"web:{user.username}", AuditAction.USER_PASSWORD, user.username)


def record_login(db: Database, user_id: int, client: str) -> None:
    """A successful login: the user's last login time and an audit row."""
    with db.session() as session:
        user = session.get(User, user_id)
        if user is None:
            return
        user.last_login_at = datetime.now(UTC)
        _audit(session, f"web:{user.username}", AuditAction.USER_LOGIN, f"client={client}")


def record_failed_login(db: Database, username: str, client: str) -> None:
    """A refused login: the name tried and the client (never the password)."""
    with db.session() as session:
        _audit(
            session,
            "web:anonymous",
            AuditAction.USER_LOGIN_FAILED,
            f"user={username} client={client}",
        )


def record_logout(db: Database, username: str, client: str) -> None:
    with db.session() as session:
        _audit(session, f"web:{username}", AuditAction.USER_LOGOUT, f"client={client}")

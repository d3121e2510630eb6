"""Web secrets: the secret key check and login sessions (API tokens: services/tokens.py).

A session id or token is 32 random bytes given to the client once; the DB keeps
HMAC-SHA256(secret key, value), so a copy of the DB alone lets nobody log in.

A user may be logged in on several devices: a new login keeps the other sessions; a password
change ends every other session of the user, an admin's reset, disable or delete all of them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session

from casescope.config import Settings
from casescope.errors import CasescopeError
from casescope.model.db import Database
from casescope.model.users import SetupToken, User, WebSession

MIN_SECRET_LENGTH = 32
PLACEHOLDERS = ("change", "secret", "example", "placeholder", "default", "xxxx", "todo")


def check_secret_key(settings: Settings) -> str:
    """The configured secret key; refuses a missing, short or placeholder one."""
    key = (settings.secret_key or "").strip()
    if not key:
        raise CasescopeError(
            "CASESCOPE_SECRET_KEY is not set; generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
        )
    lowered = key.lower()
    if len(key) < MIN_SECRET_LENGTH or any(p in lowered for p in PLACEHOLDERS):
        raise CasescopeError(
            f"CASESCOPE_SECRET_KEY looks like a placeholder or is shorter than "
            f"{MIN_SECRET_LENGTH} characters; use a random value"
        )
    if len(set(key)) < 10:
        raise CasescopeError("CASESCOPE_SECRET_KEY is not random enough")
    return key


def _utf8(text: str) -> bytes:
    # surrogatepass: a lone surrogate (JSON "\ud800") hashes and compares instead of raising
    return text.encode("utf-8", "surrogatepass")


def keyed_hash(secret: str, value: str) -> str:
    return hmac.new(_utf8(secret), _utf8(value), hashlib.sha256).hexdigest()


def same_secret(sent: str, expected: str) -> bool:
    """Constant-time comparison of a secret the client sent with the expected one.

    `hmac.compare_digest` raises TypeError for `str` holding non-ASCII characters (a request
    can send any), so both are compared as UTF-8 bytes.
    """
    return hmac.compare_digest(_utf8(sent), _utf8(expected))


@dataclass(frozen=True)
class SessionInfo:
    user_id: int
    csrf_token: str
    expires_at: float


def open_session(db: Database, secret: str, user_id: int, hours: float) -> tuple[str, str]:
    """A new session for the user: (cookie value, CSRF token)."""
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = time.time()
    with db.session() as session:
        session.execute(delete(WebSession).where(WebSession.expires_at < now))
        session.add(
            WebSession(
                id_hash=keyed_hash(secret, session_id),
                user_id=user_id,
                csrf_token=csrf,
                created_at=now,
                expires_at=now + hours * 3600,
            )
        )
    return session_id, csrf


def find_session(db: Database, secret: str, session_id: str) -> SessionInfo | None:
    with db.read() as session:
        row = session.get(WebSession, keyed_hash(secret, session_id))
    if row is None or row.expires_at < time.time():
        return None
    return SessionInfo(row.user_id, row.csrf_token, row.expires_at)


def close_session(db: Database, secret: str, session_id: str) -> None:
    with db.session() as session:
        session.execute(
            delete(WebSession).where(WebSession.id_hash == keyed_hash(secret, session_id))
        )


def end_sessions(session: Session, user_id: int, keep_hash: str | None = None) -> int:
    """Delete the user's sessions (but the one whose hash is `keep_hash`), in the caller's
    transaction; returns how many ended."""
    query = delete(WebSession).where(WebSession.user_id == user_id)
    if keep_hash is not None:
        query = query.where(WebSession.id_hash != keep_hash)
    return session.execute(query).rowcount or 0


def issue_setup_token(db: Database, secret: str) -> str:
    """A new one-time setup token (for the first admin), kept as a keyed hash so that every
    `serve` process sharing the DB accepts it."""
    token = secrets.token_urlsafe(24)
    with db.session() as session:
        session.add(SetupToken(id_hash=keyed_hash(secret, token), created_at=time.time()))
    return token


def setup_open(db: Database) -> bool:
    """No user exists yet and some process printed a setup token."""
    with db.read() as session:
        users = session.scalar(select(func.count()).select_from(User)) or 0
        return users == 0 and bool(session.scalar(select(exists().select_from(SetupToken))))


def setup_token_valid(db: Database, secret: str, token: str) -> bool:
    with db.read() as session:
        return session.get(SetupToken, keyed_hash(secret, token)) is not None


def end_setup(db: Database) -> None:
    """The first admin exists: no setup token is valid any more."""
    with db.session() as session:
        session.execute(delete(SetupToken))

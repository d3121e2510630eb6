"""Web secrets: the secret key check, login sessions and API tokens (stored only as hashes).

A session id or token is 32 random bytes given to the client once; the DB keeps
HMAC-SHA256(secret key, value), so a copy of the DB alone lets nobody log in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import delete, select, update

from casescope.config import Settings
from casescope.errors import CasescopeError, NotFoundError
from casescope.model.db import Database
from casescope.model.tables import AuditRecord
from casescope.model.users import ApiToken, WebSession

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


def keyed_hash(secret: str, value: str) -> str:
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()


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


@dataclass(frozen=True)
class TokenInfo:
    id: int
    user_id: int
    name: str
    created_at: float
    expires_at: float | None
    revoked: bool


def create_token(
    db: Database, secret: str, user_id: int, name: str, days: float | None, actor: str
) -> tuple[str, TokenInfo]:
    """A new API token: (the token, shown once; its record)."""
    if days is not None and days <= 0:
        raise CasescopeError("a token's lifetime must be positive")
    value = "cs_" + secrets.token_urlsafe(32)
    now = time.time()
    with db.session() as session:
        row = ApiToken(
            user_id=user_id,
            name=name[:100],
            token_hash=keyed_hash(secret, value),
            created_at=now,
            expires_at=now + days * 86400 if days is not None else None,
            revoked=False,
        )
        session.add(row)
        session.flush()
        session.add(AuditRecord(actor=actor, action="token.create", detail=f"{row.id} {name}"))
        info = TokenInfo(row.id, user_id, row.name, now, row.expires_at, False)
    return value, info


def verify_token(db: Database, secret: str, value: str) -> int | None:
    """The user id of a valid (known, unexpired, unrevoked) token, else None."""
    with db.read() as session:
        row = session.scalar(
            select(ApiToken).where(ApiToken.token_hash == keyed_hash(secret, value))
        )
    if row is None or row.revoked:
        return None
    if row.expires_at is not None and row.expires_at < time.time():
        return None
    return row.user_id


def list_tokens(db: Database, user_id: int) -> list[TokenInfo]:
    with db.read() as session:
        rows = session.scalars(select(ApiToken).where(ApiToken.user_id == user_id))
        return [
            TokenInfo(r.id, r.user_id, r.name, r.created_at, r.expires_at, r.revoked) for r in rows
        ]


def revoke_token(db: Database, token_id: int, user_id: int | None, actor: str) -> None:
    """Revoke a token (of `user_id`, or any user's when None: admins)."""
    with db.session() as session:
        query = update(ApiToken).where(ApiToken.id == token_id)
        if user_id is not None:
            query = query.where(ApiToken.user_id == user_id)
        if session.execute(query.values(revoked=True)).rowcount == 0:
            raise NotFoundError(f"no token {token_id}")
        session.add(AuditRecord(actor=actor, action="token.revoke", detail=str(token_id)))

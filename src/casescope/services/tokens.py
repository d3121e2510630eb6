"""API tokens: bearer secrets for the JSON API, stored only as keyed hashes.

Every token expires (at most `CASESCOPE_TOKEN_MAX_DAYS` after it is made) and has a scope:
`read` tokens may only read, `write` tokens may do what their user's role allows. Tokens are
made from a logged-in session only (the web layer refuses a bearer caller), so a leaked token
cannot mint a successor that outlives its revocation. A token's last use is recorded at most
once a minute: one UPDATE a minute per token in use, not one per request.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import asdict, dataclass

from sqlalchemy import or_, select, update

from casescope.errors import CasescopeError, NotFoundError
from casescope.model.db import Database
from casescope.model.enums import AuditAction
from casescope.model.tables import AuditRecord
from casescope.model.users import ApiToken, TokenScope, User
from casescope.services.auth import keyed_hash

logger = logging.getLogger(__name__)

#: Lifetime of a token made without `days` (shorter when the configured maximum is).
DEFAULT_TOKEN_DAYS = 30.0
#: A token's `last_used_at` is written again only when older than this (seconds).
LAST_USED_EVERY_SECONDS = 60.0
TOKEN_PREFIX = "cs_"


@dataclass(frozen=True)
class NewToken:
    user_id: int
    name: str = ""
    days: float | None = None  # None: DEFAULT_TOKEN_DAYS, or the maximum when lower
    scope: TokenScope = TokenScope.WRITE


@dataclass(frozen=True)
class TokenInfo:
    id: int
    user_id: int
    username: str
    name: str
    scope: TokenScope
    created_at: float
    expires_at: float | None
    revoked: bool
    last_used_at: float | None

    def as_dict(self) -> dict:
        return {**asdict(self), "scope": self.scope.value}


@dataclass(frozen=True)
class TokenGrant:
    """What a valid bearer token stands for."""

    token_id: int
    user_id: int
    scope: TokenScope


def _lifetime_days(days: float | None, max_days: float) -> float:
    if days is None:
        return min(DEFAULT_TOKEN_DAYS, max_days)
    if days <= 0:
        raise CasescopeError("a token's lifetime must be positive")
    if days > max_days:
        raise CasescopeError(
            f"a token lives at most {max_days:g} days (CASESCOPE_TOKEN_MAX_DAYS); "
            "make a new one when it expires"
        )
    return days


def create_token(
    db: Database, secret: str, new: NewToken, max_days: float, actor: str
) -> tuple[str, TokenInfo]:
    """A new API token: (the token, shown once; its record)."""
    days = _lifetime_days(new.days, max_days)
    value = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = time.time()
    with db.session() as session:
        username = session.scalar(select(User.username).where(User.id == new.user_id))
        if username is None:
            raise NotFoundError(f"no user {new.user_id}")
        row = ApiToken(
            user_id=new.user_id,
            name=new.name[:100],
            token_hash=keyed_hash(secret, value),
            created_at=now,
            expires_at=now + days * 86400,
            revoked=False,
            scope=new.scope,
        )
        session.add(row)
        session.flush()
        detail = f"{row.id} {new.scope.value} {days:g}d {row.name}"
        session.add(AuditRecord(actor=actor[:100], action=AuditAction.TOKEN_CREATE, detail=detail))
        info = _info(row, username)
    return value, info


def verify_token(db: Database, secret: str, value: str) -> TokenGrant | None:
    """The grant of a valid token (known, unexpired, unrevoked, of an active user), else
    None; records its use."""
    with db.read() as session:
        found = session.execute(
            select(ApiToken, User.active)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == keyed_hash(secret, value))
        ).first()
    if found is None:
        return None
    row, active = found
    now = time.time()
    if not active or row.revoked or row.expires_at is None or row.expires_at < now:
        return None
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY_SECONDS:
        _record_use(db, row.id, now)
    return TokenGrant(row.id, row.user_id, TokenScope(row.scope))


def _record_use(db: Database, token_id: int, now: float) -> None:
    """Set `last_used_at` unless another request did within the minute (one write wins)."""
    stale = now - LAST_USED_EVERY_SECONDS
    with db.session() as session:
        session.execute(
            update(ApiToken)
            .where(
                ApiToken.id == token_id,
                or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= stale),
            )
            .values(last_used_at=now)
        )


def _info(row: ApiToken, username: str) -> TokenInfo:
    return TokenInfo(
        row.id,
        row.user_id,
        username,
        row.name,
        TokenScope(row.scope),
        row.created_at,
        row.expires_at,
        row.revoked,
        row.last_used_at,
    )


def list_tokens(db: Database, user_id: int | None) -> list[TokenInfo]:
    """The tokens of one user, or of every user when None (admins), oldest first."""
    query = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id)
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    with db.read() as session:
        return [_info(row, name) for row, name in session.execute(query.order_by(ApiToken.id))]


def revoke_token(db: Database, token_id: int, user_id: int | None, actor: str) -> None:
    """Revoke a token (of `user_id`, or any user's when None: admins)."""
    with db.session() as session:
        query = update(ApiToken).where(ApiToken.id == token_id)
        if user_id is not None:
            query = query.where(ApiToken.user_id == user_id)
        if session.execute(query.values(revoked=True)).rowcount == 0:
            raise NotFoundError(f"no token {token_id}")
        session.add(
            AuditRecord(actor=actor[:100], action=AuditAction.TOKEN_REVOKE, detail=str(token_id))
        )

"""Tables of the web app: users and their case access, sessions, API tokens, event marks,
event notes and saved searches. State-changing web actions and exports are audited in `AuditRecord`.

Secrets are never stored: sessions and API tokens are kept as keyed hashes (see
`casescope.services.auth`), passwords as argon2 hashes.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from casescope.model.enums import AuditAction
from casescope.model.tables import Base, _enum, utcnow


class Role(StrEnum):
    """What a user may do; per-case access further limits analysts and read-only users."""

    ADMIN = "admin"  # everything, every case, users, audit log
    ANALYST = "analyst"  # create cases; upload, re-process, tag in cases they can access
    READ_ONLY = "read_only"  # view, search and export cases they can access

    @property
    def can_write(self) -> bool:
        return self is not Role.READ_ONLY


class TokenScope(StrEnum):
    """What an API token may do, on top of its user's role."""

    READ = "read"  # safe methods only (GET, HEAD, OPTIONS): search, view, export
    WRITE = "write"  # whatever the user's role allows, but minting tokens


class LoginKey(StrEnum):
    """What a count of failed logins is about (web/ratelimit.py)."""

    PAIR = "pair"  # one user name from one client
    USER = "user"  # one user name, from any client
    CLIENT = "client"  # one client, with any user name


class EventMark(StrEnum):
    """What an analyst can attach to one event."""

    TAG = "tag"  # free text label
    STAR = "star"
    HIDDEN = "hidden"  # left out of search results unless asked for

    def audit_action(self, attached: bool) -> AuditAction:
        """The audit row of attaching this mark to an event (or of clearing it)."""
        return _MARK_ACTIONS[self][0 if attached else 1]


_MARK_ACTIONS = {
    EventMark.TAG: (AuditAction.EVENT_TAG, AuditAction.EVENT_UNTAG),
    EventMark.STAR: (AuditAction.EVENT_STAR, AuditAction.EVENT_UNSTAR),
    EventMark.HIDDEN: (AuditAction.EVENT_HIDDEN, AuditAction.EVENT_UNHIDDEN),
}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[Role] = mapped_column(_enum(Role))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: Set by an admin's password reset: the next login may only change the password.
    must_change_password: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: IANA name of the zone the web app shows this user's times in (stored times are UTC).
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")


class CaseAccess(Base):
    """A non-admin user may see (and, by role, change) the cases listed here."""

    __tablename__ = "case_access"
    __table_args__ = (UniqueConstraint("user_id", "case_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))


class WebSession(Base):
    """A server-side login session; the cookie holds the secret, the table its hash."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)


class SetupToken(Base):
    """A one-time setup token printed by a `serve` process that found no users, as a keyed
    hash: any process behind the balancer accepts it; all are deleted once the first admin
    is made through it."""

    __tablename__ = "setup_tokens"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[float] = mapped_column(Float)


class LoginFailure(Base):
    """Failed logins of one key, in the DB so that every `serve` process behind a load
    balancer counts the same attempts. The key is stored as a SHA-256 (bounded length);
    rows are dropped `FORGET_SECONDS` after their latest failure and past `MAX_KEYS` a kind."""

    __tablename__ = "login_failures"
    __table_args__ = (
        UniqueConstraint("kind", "key_hash"),
        Index("ix_login_failures_kind_last", "kind", "last_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[LoginKey] = mapped_column(_enum(LoginKey, length=8))
    key_hash: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(Integer)
    #: Wall-clock seconds (time.time): the processes may be on different hosts.
    last_at: Mapped[float] = mapped_column(Float)


class ApiToken(Base):
    """A bearer token for the JSON API: shown once, stored as a hash, expiring, revocable.

    `expires_at` is always set for tokens made since migration 0011 (which gave the older
    permanent ones an expiry); `last_used_at` is updated at most once a minute."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    scope: Mapped[TokenScope] = mapped_column(
        _enum(TokenScope), default=TokenScope.WRITE, server_default=TokenScope.WRITE.value
    )


class EventMarkRecord(Base):
    """A tag, star or hide on one event (file id + seq) of a case."""

    __tablename__ = "event_marks"
    __table_args__ = (
        UniqueConstraint("case_id", "file_id", "seq", "kind", "label"),
        Index("ix_event_marks_case_kind", "case_id", "kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    file_id: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[EventMark] = mapped_column(_enum(EventMark))
    label: Mapped[str] = mapped_column(String(100), default="")
    actor: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EventNote(Base):
    """A note (comment) of one user on one event (file id + seq) of a case; the author's
    name is kept as text, like a mark's, so it outlives a deleted account."""

    __tablename__ = "event_notes"
    __table_args__ = (Index("ix_event_notes_case_event", "case_id", "file_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    file_id: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(BigInteger)
    author: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SavedSearch(Base):
    """A named search of one user in one case; `saved` False rows are the search history."""

    __tablename__ = "saved_searches"
    __table_args__ = (Index("ix_saved_searches_user_case", "user_id", "case_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200), default="")
    params: Mapped[str] = mapped_column(Text)  # JSON of the search form
    saved: Mapped[bool] = mapped_column(Boolean, default=False)
    #: A saved search the whole case sees and runs (only its owner or an admin changes it).
    shared: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

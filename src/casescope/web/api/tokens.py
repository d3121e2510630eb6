"""API tokens: make one (from a logged-in session only), list, revoke.

A token is shown once; every token expires (at most `CASESCOPE_TOKEN_MAX_DAYS`); a `read`
token is refused on every state-changing route (web/security.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field, field_validator

from casescope.errors import CasescopeError
from casescope.model.users import Role, TokenScope
from casescope.services import tokens as token_service
from casescope.web.api.models import OkOut
from casescope.web.ids import PathId
from casescope.web.security import Caller, State

router = APIRouter(prefix="/api/tokens", tags=["tokens"])


class TokenRequest(BaseModel):
    name: Annotated[str, Field(max_length=100)] = ""
    days: Annotated[
        float | None,
        Field(gt=0, description="Lifetime; default 30, at most CASESCOPE_TOKEN_MAX_DAYS."),
    ] = None
    scope: TokenScope = TokenScope.WRITE

    @field_validator("days", mode="before")
    @classmethod
    def _no_permanent_token(cls, value: object) -> object:
        # Omitted means the default lifetime; an explicit null asked for a permanent token.
        if value is None:
            raise ValueError("every token expires: give days, or leave it out for 30")
        return value


#: A Unix time in seconds (UTC).
Epoch = Annotated[float, Field(description="Unix time, seconds.")]


class NewTokenOut(BaseModel):
    token: str = Field(description="The secret: shown this once, send as `Bearer` token.")
    id: int
    scope: TokenScope
    expires_at: Epoch | None


class TokenOut(BaseModel):
    """A token as listed (never its secret)."""

    id: int
    user_id: int
    username: str = Field(description="Its owner.")
    name: str
    scope: TokenScope
    created_at: Epoch
    expires_at: Epoch | None
    revoked: bool
    last_used_at: Epoch | None


@router.post("", response_model=NewTokenOut)
def create_token(body: TokenRequest, state: State, principal: Caller) -> NewTokenOut:
    """A new token for the caller, shown once. Only from a logged-in session: a token
    cannot make tokens (a leaked one would otherwise outlive its own revocation)."""
    if principal.via_token:
        raise HTTPException(403, "tokens are made from a logged-in session, not with a token")
    new = token_service.NewToken(principal.user.id, body.name, body.days, body.scope)
    try:
        value, info = token_service.create_token(
            state.db, state.secret, new, state.settings.token_max_days, f"web:{principal.name}"
        )
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None
    return NewTokenOut(token=value, id=info.id, scope=info.scope, expires_at=info.expires_at)


@router.get("", response_model=list[TokenOut])
def list_tokens(
    state: State,
    principal: Caller,
    all: Annotated[bool, Query(description="Every user's tokens (admins).")] = False,
) -> list[TokenOut]:
    """Your tokens (never their secret); with `all=true`, an admin sees everyone's."""
    if all and principal.role is not Role.ADMIN:
        raise HTTPException(403, "admins only")
    owner = None if all else principal.user.id
    tokens = token_service.list_tokens(state.db, owner)
    return [TokenOut.model_validate(t, from_attributes=True) for t in tokens]


@router.delete("/{token_id}", response_model=OkOut)
def revoke_token(token_id: PathId, state: State, principal: Caller) -> OkOut:
    """Revoke one of your tokens (admins: anyone's)."""
    owner = None if principal.role is Role.ADMIN else principal.user.id
    try:
        token_service.revoke_token(state.db, token_id, owner, f"web:{principal.name}")
    except CasescopeError as exc:
        raise HTTPException(404, str(exc)) from None
    return OkOut()

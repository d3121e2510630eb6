"""The caller's own preferences: the time zone pages show times in."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from casescope.errors import CasescopeError
from casescope.model.enums import AuditAction
from casescope.services.users import set_timezone, time_zones
from casescope.web.security import Caller, Principal, State, audit
from casescope.web.state import WebState

router = APIRouter(prefix="/api", tags=["preferences"])


class TimezoneIn(BaseModel):
    timezone: Annotated[str, Field(min_length=1, max_length=64, examples=["Europe/Berlin"])]


class TimezoneOut(BaseModel):
    timezone: str = Field(description="The IANA zone every page shows times in.")


def change_timezone(state: WebState, principal: Principal, name: str) -> str:
    """Set the caller's zone (400 for a name that is not an IANA zone)."""
    try:
        set_timezone(state.db, principal.user.id, name)
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None
    audit(state, principal, AuditAction.USER_TIMEZONE, None, name)
    return name


@router.put("/me/timezone", response_model=TimezoneOut)
def put_timezone(body: TimezoneIn, state: State, principal: Caller) -> TimezoneOut:
    """Show this user's times in another zone (UTC by default)."""
    return TimezoneOut(timezone=change_timezone(state, principal, body.timezone))


@router.get("/timezones", response_model=list[str])
def timezones(principal: Caller) -> list[str]:
    """The zone names `PUT /api/me/timezone` accepts."""
    return sorted(time_zones())

"""A case's settings (name, description, status open/closed, owner) and its deletion.

Anyone who may open the case reads its settings; an admin or the case's owner changes them
(also while it is closed: reopening is a change); only an admin deletes a case, with its
exact name as confirmation. What a deletion removes: services/case_delete.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from casescope.errors import CasescopeError, NotFoundError
from casescope.model.enums import CaseStatus
from casescope.services.case_delete import DeletionReport, delete_case, deletion_preview
from casescope.services.case_lifecycle import (
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    CaseBusyError,
    CaseChange,
    CaseSettings,
    case_settings,
    may_manage,
    update_case,
)
from casescope.web.ids import PathId
from casescope.web.security import Admin, CaseRead, CaseScope, Principal, State, Writer, case_reader
from casescope.web.state import WebState

router = APIRouter(prefix="/api/cases/{case_id}", tags=["cases"])


class CaseSettingsOut(BaseModel):
    id: int
    name: str
    description: str
    status: CaseStatus = Field(description="`closed`: read-only until reopened.")
    owner: str | None = Field(description="The owner's user name (null: nobody).")
    created_at: datetime
    files: int
    events: int
    can_manage: bool = Field(description="Whether the caller may change these settings.")


class CaseSettingsIn(BaseModel):
    """Only the settings given change."""

    name: Annotated[str | None, Field(min_length=1, max_length=MAX_NAME_LENGTH)] = None
    description: Annotated[str | None, Field(max_length=MAX_DESCRIPTION_LENGTH)] = None
    status: CaseStatus | None = None
    owner: Annotated[
        str | None, Field(max_length=100, description='A user name; "" names nobody.')
    ] = None


class DeletionOut(BaseModel):
    case_id: int
    name: str
    rows: dict[str, int] = Field(description="Rows removed per table.")
    index_rows: int = Field(description="Events removed from the index.")
    evidence_files: int = Field(description="Stored evidence files removed (no other case's).")
    segments: int = Field(description="Parsed segments removed (no other case's).")
    bytes_freed: int


@contextmanager
def refusals() -> Iterator[None]:
    """404 for what is not there, 409 for work in progress, 400 for the rest."""
    try:
        yield
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except CaseBusyError as exc:
        raise HTTPException(409, str(exc)) from None
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None


def settings_out(state: WebState, principal: Principal, settings: CaseSettings) -> CaseSettingsOut:
    manage = principal.role.can_write and may_manage(state.db, principal.user, settings.id)
    return CaseSettingsOut(**settings.__dict__, can_manage=manage)


def case_manager(case_id: PathId, state: State, principal: Writer) -> CaseScope:
    """An admin, or the owner of a case they may open (closed or not)."""
    scope = case_reader(case_id, state, principal)
    if not may_manage(state.db, principal.user, case_id):
        raise HTTPException(403, "only an admin or the case's owner can change its settings")
    return scope


CaseManage = Annotated[CaseScope, Depends(case_manager)]


@router.get("/settings", response_model=CaseSettingsOut)
def get_settings(scope: CaseRead, state: State) -> CaseSettingsOut:
    with refusals():
        return settings_out(state, scope.principal, case_settings(state.db, scope.case_id))


def change_settings(state: WebState, scope: CaseScope, change: CaseChange) -> CaseSettings:
    with refusals():
        return update_case(state.db, scope.case_id, change, f"web:{scope.principal.name}")


@router.patch("/settings", response_model=CaseSettingsOut)
def patch_settings(body: CaseSettingsIn, scope: CaseManage, state: State) -> CaseSettingsOut:
    """Rename, describe, close or reopen, or give the case another owner (audited)."""
    change = CaseChange(body.name, body.description, body.status, body.owner)
    return settings_out(state, scope.principal, change_settings(state, scope, change))


def admin_case(case_id: PathId, state: State, admin: Admin) -> CaseScope:
    return case_reader(case_id, state, admin)


AdminCase = Annotated[CaseScope, Depends(admin_case)]


@router.get("/deletion", response_model=DeletionOut)
def preview_deletion(scope: AdminCase, state: State) -> DeletionOut:
    """What deleting the case would remove (nothing is removed)."""
    with refusals(), state.index.use() as index:
        return DeletionOut(**deletion_preview(state.db, index, scope.case_id).as_dict())


def remove_case(state: WebState, scope: CaseScope, confirm: str) -> DeletionReport:
    """Delete the case holding the index alone (the loader cannot load its files meanwhile)."""
    actor = f"web:{scope.principal.name}"
    with refusals(), state.index.write() as index:
        return delete_case(state.db, index, state.settings, scope.case_id, confirm, actor)


@router.delete("", response_model=DeletionOut)
def delete(
    scope: AdminCase,
    state: State,
    confirm: Annotated[
        str, Query(max_length=MAX_NAME_LENGTH, description="The case's exact name.")
    ],
) -> DeletionOut:
    """Delete the case: every row of it, its events, and the evidence files and segments no
    other case uses. Nothing of any other case is touched."""
    return DeletionOut(**remove_case(state, scope, confirm).as_dict())

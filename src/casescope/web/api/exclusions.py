"""Exclusions of a case: list, add, remove (over services/exclusions.py).

An exclusion hides a rule's hits in the case (all, or where the event holds field values),
or those a Sigma filter document excludes; hidden hits are kept and counted
(`/detections?hits=excluded`), and removing the exclusion shows them again. An exclusion is
answered as the service's `ExclusionInfo` dataclass: its fields are the answer's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from casescope.errors import CasescopeError
from casescope.services import exclusions as service
from casescope.services.exclusions import ExclusionInfo
from casescope.web.ids import PathId
from casescope.web.security import CaseRead, CaseWrite, State

router = APIRouter(prefix="/api/cases/{case_id}/exclusions", tags=["exclusions"])

Name = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(max_length=2000)]


class ExclusionIn(BaseModel):
    """A rule (with optional field conditions) or a Sigma filter document."""

    rule_uid: Annotated[str, Field(max_length=200)] | None = None
    source: Name | None = None
    conditions: dict[Name, Annotated[list[Text], Field(min_length=1, max_length=1000)]] = {}
    document: Annotated[str, Field(max_length=service.MAX_DOCUMENT_CHARS)] = ""
    note: Annotated[str, Field(max_length=service.MAX_NOTE_CHARS)] = ""


class Removed(BaseModel):
    id: int
    shown_again: int  # hits it hid


def _find(state: State, case_id: int, exclusion_id: int) -> ExclusionInfo:
    for item in service.list_exclusions(state.db, case_id):
        if item.id == exclusion_id:
            return item
    raise HTTPException(404, f"case has no exclusion {exclusion_id}")


@router.get("")
def list_case_exclusions(scope: CaseRead, state: State) -> list[ExclusionInfo]:
    """The case's exclusions, oldest first, with the hits each hides."""
    return service.list_exclusions(state.db, scope.case_id)


@router.post("", status_code=201)
async def add_case_exclusion(body: ExclusionIn, scope: CaseWrite, state: State) -> ExclusionInfo:
    """Add an exclusion (audited); the hits it covers are hidden at once."""
    request = service.NewExclusion(
        body.rule_uid, body.source, body.conditions, body.document, body.note
    )
    actor = f"web:{scope.principal.name}"
    try:
        new_id = await run_in_threadpool(
            service.add_exclusion, state.db, scope.case_id, request, actor
        )
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None
    return _find(state, scope.case_id, new_id)


@router.delete("/{exclusion_id}")
async def remove_case_exclusion(exclusion_id: PathId, scope: CaseWrite, state: State) -> Removed:
    """Remove an exclusion (audited): its hits are shown again."""
    actor = f"web:{scope.principal.name}"
    try:
        shown = await run_in_threadpool(
            service.remove_exclusion, state.db, scope.case_id, exclusion_id, actor
        )
    except CasescopeError as exc:
        raise HTTPException(404, str(exc)) from None
    return Removed(id=exclusion_id, shown_again=shown)

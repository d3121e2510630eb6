"""Saved searches and search history of the caller in one case.

Any user who can read the case (read-only included) may save, run and delete their own
searches. An analyst or admin may share one with the case: everyone who can open the case then
lists and runs it; only its owner or an admin renames, unshares or deletes it (403 for others).
An unshared search of another user is "not found". Changes to shared searches are audited.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from casescope.errors import CasescopeError
from casescope.model.enums import AuditAction
from casescope.model.users import Role
from casescope.services import event_search as es
from casescope.services import saved_searches as ss
from casescope.services.search import query_limits
from casescope.web.api.models import IsoTime, OkOut
from casescope.web.api.params import MAX_QUERY_PARAM, SearchForm
from casescope.web.api.search import Order, View, parse_columns, run_search, search_params
from casescope.web.api.search_models import EventsPage
from casescope.web.ids import BodyId, PathId
from casescope.web.security import CaseRead, CaseScope, State, audit

router = APIRouter(prefix="/api/cases/{case_id}", tags=["saved searches"])


class SearchParams(BaseModel):
    """A search as stored: the search form, sort, direction and extra columns."""

    model_config = ConfigDict(extra="forbid")

    q: Annotated[str, Field(max_length=MAX_QUERY_PARAM)] = ""
    start: Annotated[str, Field(max_length=50)] = ""
    end: Annotated[str, Field(max_length=50)] = ""
    has_detection: bool = False
    level: Annotated[str, Field(max_length=20)] = ""
    has_ioc_hit: bool = False
    channel: Annotated[str, Field(max_length=500)] = ""
    computer: Annotated[str, Field(max_length=500)] = ""
    file_id: BodyId | None = None
    show_hidden: bool = False
    starred: bool = False
    rule: Annotated[str, Field(max_length=200)] = ""
    ioc_id: BodyId | None = None
    filter: Annotated[list[Annotated[str, Field(max_length=2000)]], Field(max_length=20)] = []
    order: Order = Order.ASC
    sort: es.SortKey = es.SortKey.TIME
    columns: Annotated[str, Field(max_length=2000)] = ""

    def form(self) -> SearchForm:
        values = self.model_dump(exclude={"order", "sort", "columns", "filter"})
        return SearchForm(**values, filter=tuple(self.filter))

    def view(self) -> View:
        return View(self.order, self.sort, parse_columns(self.columns))


Name = Annotated[str, Field(min_length=1, max_length=ss.MAX_NAME)]


class NewSavedSearch(BaseModel):
    name: Name
    params: SearchParams = SearchParams()
    shared: bool = Field(False, description="Shared with the case (analysts and admins only).")


class SavedSearchChange(BaseModel):
    """What to change of a saved search: its name, whether it is shared, or both."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    shared: bool | None = None


class SavedSearchOut(BaseModel):
    """A saved search, or a search of the history (`name` "")."""

    id: int
    name: str
    params: dict[str, Any] = Field(
        description="The search as `SearchParams`, values left at their default left out."
    )
    created_at: IsoTime
    shared: bool = Field(False, description="Listed and run by everyone who can open the case.")
    owner: str = Field("", description="Who saved it (empty for the history).")
    editable: bool = Field(True, description="Whether the caller may rename, share or delete it.")


def owner_of(scope: CaseScope) -> ss.Owner:
    principal = scope.principal
    return ss.Owner(principal.user.id, scope.case_id, admin=principal.role is Role.ADMIN)


def _may_share(scope: CaseScope, shared: bool | None) -> None:
    if shared is not None and not scope.principal.role.can_write:
        raise HTTPException(403, "read-only users cannot share searches with the case")


def save(
    state: State, scope: CaseScope, name: str, params: SearchParams, shared: bool = False
) -> SavedSearchOut:
    """Check the search (a bad query is a 400 now, not when run) and keep it."""
    _may_share(scope, shared or None)
    form = params.form()
    form.request(scope.case_id, query_limits(state.settings))
    form.filters()
    values = search_params(form, params.view())
    try:
        stored = ss.save_search(state.db, owner_of(scope), name, values, shared=shared)
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None
    if shared:
        _audit(state, scope, AuditAction.SEARCH_SHARE, f"shared {stored.name!r}")
    return SavedSearchOut.model_validate(stored, from_attributes=True)


def _audit(state: State, scope: CaseScope, action: AuditAction, detail: str) -> None:
    audit(state, scope.principal, action, scope.case_id, detail)


def change(
    state: State, scope: CaseScope, search_id: int, body: SavedSearchChange
) -> SavedSearchOut:
    """Rename and/or (un)share a search the caller may change; shared ones are audited."""
    _may_share(scope, body.shared)
    try:
        before = ss.get_saved(state.db, owner_of(scope), search_id)
        after = ss.update_saved(state.db, owner_of(scope), search_id, body.name, body.shared)
    except LookupError:
        raise HTTPException(404, "no such saved search") from None
    except ss.NotYours as exc:
        raise HTTPException(403, str(exc)) from None
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None
    if before.shared != after.shared:
        verb = "shared" if after.shared else "unshared"
        _audit(state, scope, AuditAction.SEARCH_SHARE, f"{verb} {after.name!r}")
    if before.shared and before.name != after.name:
        renamed = f"renamed {before.name!r} to {after.name!r}"
        _audit(state, scope, AuditAction.SEARCH_CHANGE, renamed)
    return SavedSearchOut.model_validate(after, from_attributes=True)


def remove(state: State, scope: CaseScope, search_id: int) -> None:
    """Delete a search the caller may change (a shared one is audited)."""
    try:
        gone = ss.delete_saved(state.db, owner_of(scope), search_id)
    except LookupError:
        raise HTTPException(404, "no such saved search") from None
    except ss.NotYours as exc:
        raise HTTPException(403, str(exc)) from None
    if gone.shared:
        _audit(state, scope, AuditAction.SEARCH_CHANGE, f"deleted {gone.name!r} of {gone.owner}")


def load(state: State, scope: CaseScope, search_id: PathId) -> ss.StoredSearch:
    try:
        return ss.get_saved(state.db, owner_of(scope), search_id)
    except LookupError:
        raise HTTPException(404, "no such saved search") from None


@router.get("/saved-searches", response_model=list[SavedSearchOut])
def list_saved(scope: CaseRead, state: State) -> list[SavedSearchOut]:
    """The caller's saved searches in this case and those shared with it, by name."""
    saved = ss.list_saved(state.db, owner_of(scope))
    return [SavedSearchOut.model_validate(s, from_attributes=True) for s in saved]


@router.post("/saved-searches", status_code=201, response_model=SavedSearchOut)
def create_saved(body: NewSavedSearch, scope: CaseRead, state: State) -> SavedSearchOut:
    """Save a search under a name (the same name replaces the caller's earlier one)."""
    return save(state, scope, body.name, body.params, body.shared)


@router.patch("/saved-searches/{search_id}", response_model=SavedSearchOut)
def change_saved(
    body: SavedSearchChange, scope: CaseRead, state: State, search_id: PathId
) -> SavedSearchOut:
    """Rename a saved search or share/unshare it: its owner or an admin (403 for others)."""
    return change(state, scope, search_id, body)


@router.get("/saved-searches/{search_id}/events", response_model=EventsPage)
def run_saved(
    scope: CaseRead,
    state: State,
    search_id: PathId,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=es.MAX_PAGE)] = 50,
    exact_total: bool = False,
) -> EventsPage:
    """Run a saved search: one page of its events, like `/events` (`total_exact` too)."""
    params = SearchParams(**load(state, scope, search_id).params)
    form, page = params.form(), (limit, params.view())
    return EventsPage.model_validate(
        run_search(state, scope, form, cursor, page, exact_total=exact_total)
    )


@router.delete("/saved-searches/{search_id}", response_model=OkOut)
def delete_saved(scope: CaseRead, state: State, search_id: PathId) -> OkOut:
    """Delete a saved search: its owner or an admin (403 for others' shared ones)."""
    remove(state, scope, search_id)
    return OkOut()


@router.get("/search-history", response_model=list[SavedSearchOut])
def search_history(
    scope: CaseRead, state: State, limit: Annotated[int, Query(ge=1, le=ss.HISTORY_KEEP)] = 10
) -> list[SavedSearchOut]:
    """The caller's latest searches in this case (first pages only), newest first."""
    history = ss.history(state.db, owner_of(scope), limit)
    return [SavedSearchOut.model_validate(s, from_attributes=True) for s in history]

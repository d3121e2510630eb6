"""The Sigma rule sets page (admins): the imported sets with their counts, import an uploaded
zip or folder of YAML files (or a folder on the server), enable or disable rules by level,
status, tag, rule set or path, and the rules themselves, filtered and paged, with why a rule
cannot run. Thin forms over web/api/rules.py; every filter is in the URL.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from casescope.detect.levels import SigmaLevel, SigmaStatus
from casescope.services import rule_sets
from casescope.store.rulesets import ImportReport
from casescope.web.api import rules as rules_api
from casescope.web.pages import render
from casescope.web.security import Admin, Principal, State
from casescope.web.state import WebState

router = APIRouter(include_in_schema=False)

SetName = Annotated[str, Form(max_length=rule_sets.MAX_SET_NAME)]


class Change(StrEnum):
    ENABLE = "enable"
    DISABLE = "disable"


def _pager(wanted: rule_sets.RuleFilter, offset: int, total: int) -> dict[str, str]:
    """Links to the previous and next pages of the same filters ("" where there is none)."""
    params = {
        "source": wanted.source or "",
        "level": wanted.level or "",
        "status": wanted.status or "",
        "tag": wanted.tag or "",
        "q": wanted.text or "",
        "failed": "true" if wanted.failed else "",
    }
    base = {k: v for k, v in params.items() if v}
    step = rule_sets.RULES_PAGE
    prev = urlencode({**base, "offset": max(offset - step, 0)}) if offset > 0 else ""
    following = urlencode({**base, "offset": offset + step}) if offset + step < total else ""
    return {"prev": f"?{prev}" if prev else "", "next": f"?{following}" if following else ""}


def _page(
    request: Request,
    state: WebState,
    admin: Principal,
    wanted: rule_sets.RuleFilter | None = None,
    offset: int = 0,
    *,
    status: int = 200,
    **extra: object,
) -> HTMLResponse:
    """The page with the rules `wanted` selects from `offset`; `extra`: what a form did
    (`imported`, `changed` and `change`, `deleted` and `removed`, or `error`)."""
    wanted = wanted or rule_sets.RuleFilter()
    found = rule_sets.find_rules(state.db, wanted, offset)
    page = render(
        request,
        "admin_rules.html",
        admin,
        sets=rule_sets.rule_sets(state.db),
        wanted=wanted,
        offset=offset,
        found=found,
        pager=_pager(wanted, offset, found.total),
        levels=list(SigmaLevel),
        statuses=list(SigmaStatus),
        section="rules",
        **extra,
    )
    page.status_code = status
    return page


@router.get("/admin/rules")
def rules_page(
    request: Request,
    state: State,
    admin: Admin,
    source: Annotated[str, Query(max_length=rule_sets.MAX_SET_NAME)] = "",
    level: Annotated[SigmaLevel | None, Query()] = None,
    status: Annotated[SigmaStatus | None, Query()] = None,
    tag: Annotated[str, Query(max_length=200)] = "",
    q: Annotated[str, Query(max_length=200)] = "",
    failed: bool = False,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> HTMLResponse:
    wanted = rule_sets.RuleFilter(source or None, level, status, tag or None, q or None, failed)
    return _page(request, state, admin, wanted, offset)


def _imported(
    request: Request, state: WebState, admin: Principal, report: ImportReport
) -> Response:
    return _page(request, state, admin, imported=report)


@router.post("/admin/rules/import")
def import_upload(
    request: Request,
    state: State,
    admin: Admin,
    files: Annotated[list[UploadFile], File()],
    name: SetName = "",
) -> Response:
    try:
        report = rules_api.import_uploaded(state, admin, files, name)
    except HTTPException as exc:
        return _page(request, state, admin, status=exc.status_code, error=str(exc.detail))
    return _imported(request, state, admin, report)


@router.post("/admin/rules/import-folder")
def import_folder(
    request: Request,
    state: State,
    admin: Admin,
    path: Annotated[str, Form(min_length=1, max_length=4096)],
    name: SetName = "",
) -> Response:
    body = rules_api.FolderImport(path=path, name=name or None)
    try:
        report = rules_api.import_server_folder(state, admin, body)
    except HTTPException as exc:
        return _page(request, state, admin, status=exc.status_code, error=str(exc.detail))
    return _imported(request, state, admin, report)


@router.post("/admin/rules/sets/delete")
def delete_set(
    request: Request,
    state: State,
    admin: Admin,
    source: SetName,
    confirm: SetName = "",
) -> Response:
    """Delete a rule set with its hits once its name is typed again."""
    if confirm.strip() != source:
        error = "the name typed does not match: nothing was deleted"
        return _page(request, state, admin, status=400, error=error)
    try:
        removed = rules_api.delete_set(state, admin, source)
    except HTTPException as exc:
        return _page(request, state, admin, status=exc.status_code, error=str(exc.detail))
    return _page(request, state, admin, deleted=source, removed=removed)


@router.post("/admin/rules/{change}")
def change_rules(
    request: Request,
    change: Change,
    state: State,
    admin: Admin,
    levels: Annotated[list[SigmaLevel], Form()] = [],  # noqa: B006 - FastAPI copies it
    statuses: Annotated[list[SigmaStatus], Form()] = [],  # noqa: B006
    tags: Annotated[str, Form(max_length=2000, description="Space separated.")] = "",
    source: SetName = "",
    path: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Enable or disable every rule the criteria select (all must hold)."""
    selection = rules_api.RuleSelection(
        levels=levels,
        statuses=statuses,
        tags=tags.split()[:100],
        sources=[source] if source else [],
        path=path or None,
    )
    try:
        changed = rules_api.change(state, admin, selection, change is Change.ENABLE)
    except HTTPException as exc:
        return _page(request, state, admin, status=exc.status_code, error=str(exc.detail))
    return _page(request, state, admin, changed=changed, change=change.value)

"""Server-rendered pages (Jinja2, autoescaped): thin views over the same code as the API."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader

from casescope.detect.levels import SigmaLevel, level_rank
from casescope.display import REORDERING
from casescope.model.enums import CaseStatus, FileStatus, FileType, Operation
from casescope.model.tables import Case
from casescope.services.auth import same_secret, setup_open
from casescope.services.case_lifecycle import case_settings
from casescope.services.dashboard import build_dashboard
from casescope.services.evidence_list import file_page
from casescope.services.files import retry_failed
from casescope.services.reprocess import requeue_files
from casescope.services.users import MAX_PASSWORD_LENGTH
from casescope.units import counted, human_size
from casescope.web.api.auth import MAX_SETUP_TOKEN_LENGTH, Credentials, log_in, log_out, setup
from casescope.web.api.auth import SetupRequest as SetupBody
from casescope.web.api.cases import new_case, visible_cases
from casescope.web.api.evidence_table import FileQueryParams
from casescope.web.highlight import mark
from casescope.web.ids import parse_ids
from casescope.web.security import (
    SESSION_COOKIE,
    Caller,
    CaseRead,
    CaseWrite,
    Pending,
    Principal,
    State,
    local_path,
)
from casescope.web.state import WebState
from casescope.web.table_links import TableLinks
from casescope.web.timefmt import DEFAULT_ZONE, when

#: Characters shown as visible escapes: NUL and those that reorder the text after them
#: (event data is attacker-controlled, and U+202E can make `exe.txt` read as `txt.exe`).
_INVISIBLE = {c: f"[U+{c:04X}]" for c in (0, *sorted(map(ord, REORDERING)))}


def _finalize(value: object) -> object:
    """Every `{{ }}` output: None as empty, strings with invisible controls made visible."""
    if value is None:
        return ""
    return value.translate(_INVISIBLE) if isinstance(value, str) else value


TEMPLATES = Jinja2Templates(
    env=Environment(
        loader=FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,
        finalize=_finalize,
    )
)


def level_class(level: str | None) -> str:
    """The CSS class of a Sigma level's colour; a rule's own text never becomes a class name."""
    return f"level-{level.lower()}" if level and level_rank(level) >= 0 else "level-unknown"


def level_edge(level: str | None) -> str:
    """The CSS class of a level-coloured left edge (matrix cells, rule cards)."""
    return f"edge-{level.lower()}" if level and level_rank(level) >= 0 else "edge-unknown"


TEMPLATES.env.filters["when"] = when
TEMPLATES.env.filters["level_class"] = level_class
TEMPLATES.env.filters["level_edge"] = level_edge
TEMPLATES.env.filters["highlight"] = mark
TEMPLATES.env.filters["size"] = human_size
TEMPLATES.env.filters["counted"] = counted
LOGIN_CSRF_COOKIE = "casescope_login_csrf"
router = APIRouter(include_in_schema=False)


def render(
    request: Request, name: str, principal: Principal | None, **context: object
) -> HTMLResponse:
    context.update(
        user=principal.user if principal else None,
        csrf=principal.csrf_token if principal else "",
        tz=principal.user.timezone if principal else DEFAULT_ZONE,
    )
    return TEMPLATES.TemplateResponse(request, name, context)


def _login_form(
    request: Request, state: WebState, name: str, error: str = "", next_page: str = "/"
) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    setup = setup_open(state.db)
    response = render(
        request, name, None, login_csrf=token, error=error, setup=setup, next_page=next_page
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=state.settings.cookie_secure,
    )
    return response


def _check_login_csrf(request: Request, sent: str) -> None:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not same_secret(sent, cookie):
        raise HTTPException(403, "missing or wrong CSRF token; reload the form")


@router.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for it on every page (the pages link the SVG icon itself)."""
    return RedirectResponse("/static/favicon.svg", status_code=301)


@router.get("/login")
def login_page(
    request: Request, state: State, next: Annotated[str, Query(max_length=4000)] = "/"
) -> HTMLResponse:
    """The login form; `next`: the page to go back to afterwards (a path of this app)."""
    return _login_form(request, state, "login.html", next_page=local_path(next))


@router.post("/login")
def login_submit(
    request: Request,
    state: State,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=MAX_PASSWORD_LENGTH)],
    login_csrf: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=4000)] = "/",
) -> Response:
    _check_login_csrf(request, login_csrf)
    response = RedirectResponse(local_path(next), status_code=303)
    try:
        done = log_in(state, request, response, Credentials(username=username, password=password))
    except HTTPException as exc:
        page = _login_form(
            request, state, "login.html", error=str(exc.detail), next_page=local_path(next)
        )
        page.status_code = exc.status_code
        page.headers.update(exc.headers or {})  # Retry-After of the rate limit
        return page
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    if done.must_change_password:
        response.headers["location"] = "/password"
    return response


@router.get("/setup")
def setup_page(request: Request, state: State) -> Response:
    if not setup_open(state.db):
        return RedirectResponse("/login", status_code=303)
    return _login_form(request, state, "setup.html")


@router.post("/setup")
def setup_submit(
    request: Request,
    state: State,
    setup_token: Annotated[str, Form(max_length=MAX_SETUP_TOKEN_LENGTH)],
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=MAX_PASSWORD_LENGTH)],
    login_csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    _check_login_csrf(request, login_csrf)
    try:
        setup(SetupBody(username=username, password=password, setup_token=setup_token), state)
    except HTTPException as exc:
        page = _login_form(request, state, "setup.html", error=str(exc.detail))
        page.status_code = exc.status_code
        return page
    return RedirectResponse("/login", status_code=303)


@router.post("/logout")
def logout(request: Request, state: State, principal: Pending) -> Response:
    log_out(state, request, principal)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
def cases_page(request: Request, state: State, principal: Caller) -> HTMLResponse:
    return render(request, "cases.html", principal, cases=visible_cases(state, principal))


@router.post("/cases")
def create_case_page(
    state: State,
    principal: Caller,
    name: Annotated[str, Form(max_length=200)],
    description: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    if not principal.role.can_write:
        raise HTTPException(403, "read-only users cannot create cases")
    case_id = new_case(state, principal, name, description)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


def _case_row(state: WebState, case_id: int) -> Case:
    with state.db.read() as session:
        case = session.get(Case, case_id)
    if case is None:
        raise HTTPException(404, "no such case")
    return case


@router.get("/cases/{case_id}")
def dashboard_page(request: Request, scope: CaseRead, state: State) -> HTMLResponse:
    with state.index.use() as index:
        board = build_dashboard(state.db, index, scope.case_id)
    return render(
        request,
        "case.html",
        scope.principal,
        case=_case_row(state, scope.case_id),
        case_id=scope.case_id,
        board=board,
        known_levels=[level.value for level in SigmaLevel],
    )


@router.get("/cases/{case_id}/evidence")
def evidence_page(
    request: Request, scope: CaseRead, state: State, wanted: FileQueryParams
) -> HTMLResponse:
    """The file table a page at a time, filtered and sorted by the query string."""
    table = file_page(state.db, scope.case_id, wanted)
    return render(
        request,
        "evidence.html",
        scope.principal,
        case_id=scope.case_id,
        files=table.rows,
        table=table,
        links=TableLinks(request, f"/cases/{scope.case_id}/evidence"),
        statuses=list(FileStatus),
        types=list(FileType),
        writable=scope.principal.user.role.can_write
        and case_settings(state.db, scope.case_id).status is CaseStatus.OPEN,
    )


@router.post("/cases/{case_id}/evidence/reprocess")
async def reprocess_page(request: Request, scope: CaseWrite, state: State) -> Response:
    form = await request.form()
    try:
        operation = Operation(str(form.get("operation", "reindex")))
    except ValueError:
        raise HTTPException(400, "unknown operation") from None
    ids = parse_ids(form.getlist("file_ids"))
    if form.get("scope") == "selected" and not ids:
        raise HTTPException(400, "select files first")
    ids_or_all = ids if form.get("scope") == "selected" else None
    done = requeue_files(
        state.db,
        state.settings,
        scope.case_id,
        operation,
        ids_or_all,
        actor=f"web:{scope.principal.name}",
    )
    if done.count:
        state.kick_workers()
    return RedirectResponse(f"/cases/{scope.case_id}/evidence", status_code=303)


@router.post("/cases/{case_id}/evidence/retry")
async def retry_page(request: Request, scope: CaseWrite, state: State) -> Response:
    form = await request.form()
    ids = parse_ids(form.getlist("file_ids")) or None
    done = retry_failed(
        state.db, state.settings, scope.case_id, ids, actor=f"web:{scope.principal.name}"
    )
    if done.count:
        state.kick_workers()
    return RedirectResponse(f"/cases/{scope.case_id}/evidence", status_code=303)

"""Who is asking and what they may do: one set of dependencies used by every route.

A request is authenticated by the session cookie (browser) or `Authorization: Bearer`
(API token). State-changing requests made with the cookie must carry the session's CSRF token
(`X-CSRF-Token` header or `csrf_token` form field; the header only for the streamed upload);
bearer requests are exempt, as a browser never sends that header on its own. Requests with a
body are authenticated before it is read (web/guard.py); their principal is kept on the
request and used here. A `read` token is refused on every state-changing request. A session
whose user must change their password (after an admin's reset) reaches only the routes that
take `Pending` (who am I, change password, log out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from casescope.errors import CaseClosedError
from casescope.model.enums import AuditAction, CaseStatus
from casescope.model.tables import AuditRecord, Case
from casescope.model.users import Role, TokenScope
from casescope.services.auth import find_session, same_secret
from casescope.services.tokens import verify_token
from casescope.services.users import UserInfo, can_access, get_user
from casescope.web.ids import PathId
from casescope.web.state import WebState

SESSION_COOKIE = "casescope_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRequired(Exception):
    """No valid session or token: pages redirect to the login form, the API answers 401."""


#: Paths answered as an API (401 JSON) rather than a page (redirect to the login form).
API_PATHS = ("/api/", "/openapi.json")


def login_required_response(path: str, query: str = "", *, come_back: bool = True) -> Response:
    """The answer to a request without a valid session or token: the API says 401, a page
    sends the browser to the login form, which (`come_back`: a page read with GET) brings
    it back here afterwards, so a shared link to a search survives the login."""
    if path.startswith(API_PATHS):
        return JSONResponse({"detail": "login required"}, status_code=401)
    back = path + (f"?{query}" if query else "")
    target = f"/login?{urlencode({'next': back})}" if come_back and back != "/" else "/login"
    return RedirectResponse(target, status_code=303)


def local_path(target: str | None) -> str:
    """`target` if it is a path of this app (where a login may send the browser back to),
    else "/": never another site (`//evil.example`, `https://…`, `/\\evil`)."""
    if not target or len(target) > 4000 or not target.startswith("/"):
        return "/"
    if target.startswith(("//", "/\\")) or any(c in target for c in "\r\n\x00"):
        return "/"
    return target


class PasswordChangeRequired(Exception):
    """The session's user must change their password first: pages redirect to the password
    form, the API answers 403."""


@dataclass(frozen=True)
class Principal:
    user: UserInfo
    via_token: bool
    csrf_token: str = ""
    #: The bearer token's scope; None for a session.
    token_scope: TokenScope | None = None

    @property
    def name(self) -> str:
        return self.user.username

    @property
    def role(self) -> Role:
        return self.user.role


def get_state(request: Request) -> WebState:
    return request.app.state.web


State = Annotated[WebState, Depends(get_state)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _authenticate(request: Request, state: WebState) -> Principal | None:
    token = _bearer(request)
    if token is not None:
        grant = verify_token(state.db, state.secret, token)
        user = get_user(state.db, grant.user_id) if grant is not None else None
        if user is None or grant is None:
            return None
        return Principal(user, via_token=True, token_scope=grant.scope)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    info = find_session(state.db, state.secret, cookie)
    user = get_user(state.db, info.user_id) if info else None
    return Principal(user, via_token=False, csrf_token=info.csrf_token) if user and info else None


def known_principal(request: Request, state: WebState) -> Principal | None:
    """The caller if the request carries a valid session or token, else None (no error);
    the result is kept on the request for the route's own dependencies."""
    principal = getattr(request.state, "principal", None)
    if principal is None and (_bearer(request) or request.cookies.get(SESSION_COOKIE)):
        principal = _authenticate(request, state)
        if principal is not None:
            request.state.principal = principal
    return principal


def still_authorised(request: Request, state: WebState, principal: Principal, case_id: int) -> bool:
    """Whether the credentials of a long-lived request (an event stream) still log in as the
    same user, who may still open the case: a logout, an expired or revoked token, or a
    revoked grant ends it."""
    now = _authenticate(request, state)
    return (
        now is not None
        and now.user.id == principal.user.id
        and can_access(state.db, now.user, case_id)
    )


async def _csrf_ok(request: Request, principal: Principal, *, form: bool = True) -> bool:
    sent = request.headers.get("x-csrf-token")
    if sent is None and form:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get("csrf_token")
            sent = value if isinstance(value, str) else None
    return sent is not None and same_secret(sent, principal.csrf_token)


async def _checked_principal(request: Request, state: WebState, *, form_csrf: bool) -> Principal:
    """The authenticated caller (even one who must change their password first); CSRF-checked
    for cookie requests that change state, scope-checked for token requests."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        principal = _authenticate(request, state)
        if principal is None:
            raise LoginRequired()
        request.state.principal = principal
    if request.method in SAFE_METHODS:
        return principal
    if principal.token_scope is TokenScope.READ:
        raise HTTPException(403, "a read-only token cannot change anything")
    if not principal.via_token and not await _csrf_ok(request, principal, form=form_csrf):
        raise HTTPException(403, "missing or wrong CSRF token")
    return principal


async def current_principal(request: Request, state: State) -> Principal:
    """The authenticated caller, allowed to use the app (password change not pending)."""
    return _not_pending(await _checked_principal(request, state, form_csrf=True))


async def streaming_principal(request: Request, state: State) -> Principal:
    """As `current_principal`, but the CSRF token must come in the `X-CSRF-Token` header: a
    route that streams its body (uploads) must not read it to find a form field."""
    return _not_pending(await _checked_principal(request, state, form_csrf=False))


async def pending_principal(request: Request, state: State) -> Principal:
    """The authenticated caller, even one who must change their password first."""
    return await _checked_principal(request, state, form_csrf=True)


def _not_pending(principal: Principal) -> Principal:
    if principal.user.must_change_password and not principal.via_token:
        raise PasswordChangeRequired()
    return principal


Pending = Annotated[Principal, Depends(pending_principal)]
Caller = Annotated[Principal, Depends(current_principal)]
StreamingCaller = Annotated[Principal, Depends(streaming_principal)]


def require_writer(principal: Caller) -> Principal:
    if not principal.role.can_write:
        raise HTTPException(403, "read-only users cannot change anything")
    return principal


def require_admin(principal: Caller) -> Principal:
    if principal.role is not Role.ADMIN:
        raise HTTPException(403, "admins only")
    return principal


Writer = Annotated[Principal, Depends(require_writer)]
Admin = Annotated[Principal, Depends(require_admin)]


@dataclass(frozen=True)
class CaseScope:
    """The case a request is about, checked against the caller's access."""

    case_id: int
    principal: Principal


def _check_case(
    state: WebState, principal: Principal, case_id: int, *, write: bool = False
) -> CaseScope:
    """The case, if the caller may open it; for a write, also only while it is open (a
    closed case is read-only: 409 until it is reopened)."""
    with state.db.read() as session:
        case = session.get(Case, case_id)
        name, status = (case.name, case.status) if case is not None else ("", None)
    if status is None:
        raise HTTPException(404, f"no case {case_id}")
    if not can_access(state.db, principal.user, case_id):
        raise HTTPException(403, "no access to this case")
    if write and status is CaseStatus.CLOSED:
        raise HTTPException(409, str(CaseClosedError(name)))
    return CaseScope(case_id, principal)


def case_reader(case_id: PathId, state: State, principal: Caller) -> CaseScope:
    return _check_case(state, principal, case_id)


def case_writer(case_id: PathId, state: State, principal: Writer) -> CaseScope:
    return _check_case(state, principal, case_id, write=True)


def case_uploader(case_id: PathId, state: State, principal: StreamingCaller) -> CaseScope:
    """A writer of the case, checked before the body (a streamed upload) is read."""
    return _check_case(state, require_writer(principal), case_id, write=True)


CaseRead = Annotated[CaseScope, Depends(case_reader)]
CaseWrite = Annotated[CaseScope, Depends(case_writer)]
CaseUpload = Annotated[CaseScope, Depends(case_uploader)]


def audit(
    state: WebState,
    principal: Principal,
    action: AuditAction,
    case_id: int | None = None,
    detail: str = "",
) -> None:
    """Record a state-changing action or an export in the audit log."""
    with state.db.session() as session:
        session.add(
            AuditRecord(
                actor=f"web:{principal.name}"[:100],
                action=action,
                case_id=case_id,
                detail=detail[:2000],
            )
        )

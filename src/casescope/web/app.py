"""The FastAPI application of `casescope serve`: JSON API under /api, pages at the root."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from casescope.config import Settings
from casescope.errors import CaseClosedError, IndexMemoryError, NotFoundError, QueryTimeoutError
from casescope.model.db import Database
from casescope.services.auth import check_secret_key, issue_setup_token
from casescope.services.users import count_users
from casescope.store.index_url import check_index_url
from casescope.web import (
    account_pages,
    admin_pages,
    audit_pages,
    bundle_pages,
    case_pages,
    detections_pages,
    event_pages,
    jobs_pages,
    marks_pages,
    pages,
    rule_pages,
    search_pages,
    settings_pages,
    story_pages,
    system_pages,
    token_pages,
)
from casescope.web.api import (
    audit_log,
    auth,
    case_settings,
    cases,
    evidence_table,
    exclusions,
    file_rows,
    files,
    grants,
    iocs,
    jobs,
    preferences,
    rules,
    saved_searches,
    search,
    story,
    system,
    timeline,
    tokens,
    users,
    workbench,
)
from casescope.web.api import detections as detections_api
from casescope.web.api import marks as marks_api
from casescope.web.api_docs import add_api_docs
from casescope.web.clients import check_address_settings
from casescope.web.error_pages import add_error_pages, page_or_json
from casescope.web.guard import AuthBeforeBody
from casescope.web.headers import SecurityHeaders
from casescope.web.health import HealthMonitor
from casescope.web.outage import DatabaseOutage
from casescope.web.ratelimit import LoginLimiter
from casescope.web.security import (
    LoginRequired,
    PasswordChangeRequired,
    login_required_response,
)
from casescope.web.state import IndexHandle, WebState
from casescope.web.strict_json import StrictJsonMiddleware

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
#: Hosts a browser on this machine may name besides the bind address (DNS rebinding: a page
#: of evil.example whose name resolves to 127.0.0.1 sends `Host: evil.example`).
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
WILDCARD_BINDS = ("0.0.0.0", "::", "")


def open_state(settings: Settings) -> WebState:
    """Check the secret key, open the DB, become the index owner; a setup token if no user."""
    secret = check_secret_key(settings)
    settings.ensure_dirs()
    db = Database(settings)
    state = WebState(settings, db, IndexHandle(settings, db), secret)
    if count_users(db) == 0:
        state.setup_token = issue_setup_token(db, secret)
        logger.warning("no users yet: create the first admin at /setup with the setup token")
        print(  # noqa: T201 - the operator must see it on the console, once
            f"casescope: no users yet. One-time setup token: {state.setup_token}\n"
            "  open /setup in the browser, or run `casescope user create --admin`",
            flush=True,
        )
    state.index.start()
    return state


def _login_required(request: Request, _exc: Exception) -> Response:
    come_back = request.method in ("GET", "HEAD")
    return login_required_response(request.url.path, request.url.query, come_back=come_back)


def _password_change_required(request: Request, _exc: Exception) -> Response:
    if request.url.path.startswith("/api/"):
        detail = "password change required: POST /api/me/password first"
        return JSONResponse({"detail": detail}, status_code=403)
    return RedirectResponse("/password", status_code=303)


async def _index_memory(request: Request, exc: Exception) -> Response:
    """A query over the index's memory budget: the server is busy, not broken (503)."""
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})


async def _query_timeout(request: Request, exc: Exception) -> Response:
    """A query stopped at its time bound: the server will not spend more on it (503); the
    message asks for a narrower query rather than a retry."""
    return JSONResponse({"detail": str(exc)}, status_code=503)


async def _not_found(request: Request, exc: Exception) -> Response:
    """Something named in the request that is not there (a file id of another case): 404."""
    return await page_or_json(request, 404, str(exc))


async def _case_closed(request: Request, exc: Exception) -> Response:
    """A change a closed case refused below the routes' own check (intake): 409."""
    return await page_or_json(request, 409, str(exc))


def allowed_hosts(settings: Settings, bind_host: str | None) -> list[str]:
    """`CASESCOPE_ALLOWED_HOSTS`, or the bind address and the local names; IPv6 addresses
    also in brackets (the form of a `Host` header)."""
    names = [h for h in settings.allowed_hosts.replace(",", " ").split() if h]
    if not names:
        names = list(LOCAL_HOSTS)
        if bind_host and bind_host not in WILDCARD_BINDS:
            names.append(bind_host)
        elif bind_host is not None:
            logger.warning(
                "serve listens on all addresses but accepts only Host headers of %s: set "
                "CASESCOPE_ALLOWED_HOSTS to the names users type",
                ", ".join(names),
            )
    return names + [f"[{h}]" for h in names if ":" in h and not h.startswith("[")]


def _add_middleware(app: FastAPI, settings: Settings, bind_host: str | None) -> None:
    """Outermost first: the Host check, the security headers, a 503 for whatever needs the
    metadata DB while it is unreachable, authentication before bodies, then (once
    authenticated) JSON bodies checked for lone surrogates."""
    app.add_middleware(StrictJsonMiddleware)
    app.add_middleware(AuthBeforeBody)
    app.add_middleware(DatabaseOutage)
    app.add_middleware(SecurityHeaders, hsts=settings.cookie_secure)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(settings, bind_host))


def create_app(settings: Settings, bind_host: str | None = None) -> FastAPI:
    """The app; the state (DB, index ownership) is opened by its lifespan. `bind_host`, the
    address `serve` listens on, is an allowed `Host` unless `CASESCOPE_ALLOWED_HOSTS` is set."""
    check_secret_key(settings)  # refuse at once, before anything listens
    check_address_settings(settings)
    check_index_url(settings)  # a wrong CASESCOPE_INDEX_URL: a clear error, not a lifespan trace

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.web = open_state(settings)
        app.state.login_limiter = LoginLimiter(app.state.web.db, settings.login_attempts_per_minute)
        app.state.health = HealthMonitor(app.state.web)
        app.state.health.start()
        try:
            yield
        finally:
            app.state.health.close()
            app.state.web.close()

    app = FastAPI(
        title="casescope",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url=None,  # web/api_docs.py: its own routes, for the CSP and the login
        docs_url=None,
        redoc_url=None,
        max_body_size=settings.max_request_bytes,
    )
    app.state.streams = jobs.StreamSlots()
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(PasswordChangeRequired, _password_change_required)
    app.add_exception_handler(IndexMemoryError, _index_memory)
    app.add_exception_handler(QueryTimeoutError, _query_timeout)
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(CaseClosedError, _case_closed)
    add_error_pages(app)
    _add_middleware(app, settings, bind_host)
    add_api_docs(app, settings.api_docs)
    for module in (
        auth,
        tokens,
        users,
        cases,
        files,
        search,
        system,
        saved_searches,
        iocs,
        exclusions,
        jobs,
        case_settings,
        file_rows,
    ):
        app.include_router(module.router)
    app.include_router(files.upload_router, max_body_size=settings.max_upload_bytes)
    app.include_router(detections_api.router)
    app.include_router(evidence_table.router)
    app.include_router(audit_log.router)
    app.include_router(audit_pages.router)
    app.include_router(system_pages.router)
    app.include_router(workbench.router)
    app.include_router(event_pages.router)
    app.include_router(pages.router)
    app.include_router(account_pages.router)
    app.include_router(search_pages.router)
    app.include_router(jobs_pages.router)
    app.include_router(detections_pages.router)
    app.include_router(story.router)
    app.include_router(story_pages.router)
    app.include_router(case_pages.router)
    app.include_router(bundle_pages.router)
    app.include_router(bundle_pages.upload_router, max_body_size=settings.max_upload_bytes)
    for module in (timeline, preferences, settings_pages):  # the search workbench
        app.include_router(module.router)
    for module in (rules, grants, admin_pages, token_pages, rule_pages):  # administration
        app.include_router(module.router)
    for module in (marks_api, marks_pages):  # marks and notes
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app

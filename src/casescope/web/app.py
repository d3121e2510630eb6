"""The FastAPI application of `casescope serve`: JSON API under /api, pages at the root."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from casescope.config import Settings
from casescope.errors import IndexMemoryError, NotFoundError
from casescope.model.db import Database
from casescope.services.auth import check_secret_key
from casescope.services.users import count_users
from casescope.web import jobs_pages, pages, search_pages
from casescope.web.api import (
    auth,
    cases,
    exclusions,
    files,
    iocs,
    jobs,
    saved_searches,
    search,
    system,
)
from casescope.web.ratelimit import LoginLimiter
from casescope.web.security import LoginRequired
from casescope.web.state import IndexHandle, WebState

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def open_state(settings: Settings) -> WebState:
    """Check the secret key, open the DB, become the index owner; a setup token if no user."""
    secret = check_secret_key(settings)
    settings.ensure_dirs()
    db = Database(settings)
    state = WebState(settings, db, IndexHandle(settings, db), secret)
    if count_users(db) == 0:
        state.setup_token = secrets.token_urlsafe(24)
        logger.warning("no users yet: create the first admin at /setup with the setup token")
        print(  # noqa: T201 - the operator must see it on the console, once
            f"casescope: no users yet. One-time setup token: {state.setup_token}\n"
            "  open /setup in the browser, or run `casescope user create --admin`",
            flush=True,
        )
    state.index.start()
    return state


def _login_required(request: Request, _exc: Exception) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": "login required"}, status_code=401)
    return RedirectResponse("/login", status_code=303)


async def _index_memory(request: Request, exc: Exception) -> Response:
    """A query over the index's memory budget: the server is busy, not broken (503)."""
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})


async def _not_found(request: Request, exc: Exception) -> Response:
    """Something named in the request that is not there (a file id of another case): 404."""
    return JSONResponse({"detail": str(exc)}, status_code=404)


def create_app(settings: Settings) -> FastAPI:
    """The app; the state (DB, index ownership) is opened by its lifespan."""
    check_secret_key(settings)  # refuse at once, before anything listens

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.web = open_state(settings)
        try:
            yield
        finally:
            app.state.web.close()

    app = FastAPI(title="casescope", version="0.1.0", lifespan=lifespan)
    app.state.login_limiter = LoginLimiter(settings.login_attempts_per_minute)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(IndexMemoryError, _index_memory)
    app.add_exception_handler(NotFoundError, _not_found)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    for module in (auth, cases, files, search, system, saved_searches, iocs, exclusions, jobs):
        app.include_router(module.router)
    app.include_router(pages.router)
    app.include_router(search_pages.router)
    app.include_router(jobs_pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app

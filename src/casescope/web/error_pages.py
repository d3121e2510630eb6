"""Errors as pages for browsers, as JSON for the API.

A browser that asks for a page (`Accept: text/html`, any path outside the API) gets the error
inside the layout: the status, a sentence, the detail, and the way back. Every other caller
(the API under `/api/`, `fetch()` from the pages' scripts, curl) gets FastAPI's JSON
`{"detail": ...}`, as before. A 500 never shows the exception: it is logged with its
traceback here, and the page or JSON says only that the server failed.
"""

from __future__ import annotations

import logging
from enum import IntEnum

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from casescope.web.headers import SECURITY_HEADERS
from casescope.web.pages import render
from casescope.web.security import API_PATHS, Principal, known_principal

logger = logging.getLogger(__name__)

#: How much of a validation error's detail a page shows (the rest is in the JSON answer).
MAX_PROBLEMS = 5


class ErrorTitle(IntEnum):
    """Statuses that get their own sentence; others use the reason phrase."""

    BAD_REQUEST = 400
    UNAUTHORIZED = 401
    FORBIDDEN = 403
    NOT_FOUND = 404
    UNPROCESSABLE = 422
    SERVER_ERROR = 500
    UNAVAILABLE = 503

    @property
    def sentence(self) -> str:
        return _SENTENCES[self]


_SENTENCES = {
    ErrorTitle.BAD_REQUEST: "The request could not be understood.",
    ErrorTitle.UNAUTHORIZED: "You are not logged in.",
    ErrorTitle.FORBIDDEN: "You may not open this.",
    ErrorTitle.NOT_FOUND: "There is nothing here.",
    ErrorTitle.UNPROCESSABLE: "Some of what was sent is not valid.",
    ErrorTitle.SERVER_ERROR: "The server failed to answer this request.",
    ErrorTitle.UNAVAILABLE: "The server cannot answer this request now.",
}


def wants_page(request: Request) -> bool:
    """A browser asking for a page: outside the API, and HTML accepted explicitly."""
    if request.url.path.startswith(API_PATHS):
        return False
    return "text/html" in request.headers.get("accept", "")


def _sentence(status: int) -> str:
    try:
        return ErrorTitle(status).sentence
    except ValueError:
        return "The request could not be completed."


def _caller(request: Request) -> Principal | None:
    """Who is asking, for the navigation; None when not logged in (or the app not open)."""
    state = getattr(request.app.state, "web", None)
    return known_principal(request, state) if state is not None else None


def error_page(
    request: Request,
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
    principal: Principal | None = None,
) -> Response:
    """The layout with the error; the navigation when the caller is logged in."""
    response = render(
        request,
        "error.html",
        principal,
        status=status,
        sentence=_sentence(status),
        detail=detail,
    )
    response.status_code = status
    response.headers.update(headers or {})  # Retry-After, WWW-Authenticate
    return response


async def page_or_json(request: Request, status: int, detail: str) -> Response:
    """An error raised as something other than an HTTPException (e.g. `NotFoundError`)."""
    if not wants_page(request):
        return JSONResponse({"detail": detail}, status_code=status)
    principal = await run_in_threadpool(_caller, request)
    return error_page(request, status, detail, principal=principal)


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):  # registered for that class only
        raise exc
    if not wants_page(request) or exc.status_code < 400:
        return await http_exception_handler(request, exc)
    principal = await run_in_threadpool(_caller, request)
    return error_page(request, exc.status_code, str(exc.detail), exc.headers, principal)


def _problem(error: dict) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    return f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", ""))


async def _validation_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):  # registered for that class only
        raise exc
    if not wants_page(request):
        return await request_validation_exception_handler(request, exc)
    problems = [_problem(error) for error in exc.errors()[:MAX_PROBLEMS]]
    principal = await run_in_threadpool(_caller, request)
    return error_page(request, 422, "; ".join(problems), principal=principal)


async def _server_error(request: Request, exc: Exception) -> Response:
    """Last resort: Starlette's ServerErrorMiddleware calls it outside every other
    middleware, so the security headers are added here. The caller is only the one already
    found (the failure may be the database's)."""
    logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    if wants_page(request):
        principal = getattr(request.state, "principal", None)
        detail = "The failure was logged; try again, or tell your admin."
        response = error_page(request, 500, detail, principal=principal)
    else:
        response = JSONResponse({"detail": "internal server error"}, status_code=500)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    return response


def add_error_pages(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _server_error)

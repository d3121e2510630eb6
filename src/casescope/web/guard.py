"""Authentication before any request body is read.

FastAPI reads (and, for multipart forms, writes to temporary files) a route's body before it
runs the route's dependencies, so without this an anonymous client could make the server
parse uploads it then refuses. This pure ASGI middleware checks the session cookie or bearer
token of every request that may carry a body, except the login and setup routes, and answers
401 (API) or a redirect to the login page without reading a byte of the body. The caller it
found is kept on the request (`request.state.principal`) for the route's own checks. Body
sizes are capped by FastAPI's own limits (`max_body_size`, set in web/app.py).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from casescope.web.security import known_principal, login_required_response

#: Routes that take a body from callers who are not logged in yet (small JSON or forms).
ANONYMOUS_BODY_PATHS = frozenset({"/api/login", "/api/setup", "/login", "/setup"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class AuthBeforeBody:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in SAFE_METHODS
            or scope["path"] in ANONYMOUS_BODY_PATHS
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope)  # headers and cookies only: `receive` is not given to it
        principal = await run_in_threadpool(known_principal, request, scope["app"].state.web)
        if principal is None:
            answer = login_required_response(scope["path"], come_back=False)  # a form post
            await answer(scope, receive, send)
            return
        await self.app(scope, receive, send)

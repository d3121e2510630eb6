"""Requests while the metadata DB is unreachable (a PostgreSQL restart, a lost network).

A request that needs the database then answers 503 with a sentence that says so and a
`Retry-After`: an error page for a browser, `{"detail": ...}` for everyone else. A request
whose transaction PostgreSQL rolled back as a conflict (a deadlock) answers 503 the same
way, saying so, with a shorter `Retry-After`. The outage
is logged once per wave (model/outage.py), not as a traceback per request, and `serve` keeps
running: the same request succeeds once the database is back. A response already under way
(an event stream) just ends; its client reconnects.

A pure ASGI middleware, inside the security headers and outside everything that may read
the database (the authentication before bodies, the routes): those raise the driver's
error, and Starlette's last-resort handler would log it with its traceback and answer 500.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse, Response
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from casescope.model.outage import is_conflict, note_transient
from casescope.web.error_pages import error_page, wants_page

#: What callers are told (also `/health`'s `detail`).
DB_UNREACHABLE = (
    "The metadata database is unreachable; casescope keeps trying to reach it. "
    "Try again in a moment."
)
#: A request whose transaction the server rolled back as a conflict (a deadlock).
DB_CONFLICT = "The request collided with another change in the database; try it again."
RETRY_AFTER_SECONDS = "5"


def outage_response(request: Request, detail: str = DB_UNREACHABLE) -> Response:
    headers = {"Retry-After": RETRY_AFTER_SECONDS if detail is DB_UNREACHABLE else "1"}
    if wants_page(request):
        return error_page(request, 503, detail, headers)  # nobody: no database
    return JSONResponse({"detail": detail}, status_code=503, headers=headers)


class DatabaseOutage:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            settings = scope["app"].state.web.settings
            what = f"{scope['method']} {scope['path']}"
            if not note_transient(exc, what, settings, gives_up=False):
                raise
            if not started:
                detail = DB_CONFLICT if is_conflict(exc) else DB_UNREACHABLE
                await outage_response(Request(scope), detail)(scope, receive, send)

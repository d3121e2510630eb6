"""Requests while the metadata DB is unreachable (a PostgreSQL restart, a lost network).

A request that needs the database then answers 503 with a sentence that says so and a
`Retry-After`: an error page for a browser, `{"detail": ...}` for everyone else. The outage
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

from casescope.model.outage import note_outage
from casescope.web.error_pages import error_page, wants_page

#: What callers are told (also `/health`'s `detail`).
DB_UNREACHABLE = (
    "The metadata database is unreachable; casescope keeps trying to reach it. "
    "Try again in a moment."
)
RETRY_AFTER_SECONDS = "5"


def outage_response(request: Request) -> Response:
    headers = {"Retry-After": RETRY_AFTER_SECONDS}
    if wants_page(request):
        return error_page(request, 503, DB_UNREACHABLE, headers)  # nobody: no database
    return JSONResponse({"detail": DB_UNREACHABLE}, status_code=503, headers=headers)


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
            if not note_outage(exc, what, settings, gives_up=False):
                raise
            if not started:
                await outage_response(Request(scope))(scope, receive, send)

"""Refuse a JSON body that holds a lone surrogate escape (`"\\ud800"`), with a 400.

Python's `json` accepts such an escape and yields a `str` that cannot be encoded: every route
that stores, hashes or checks that text (SQLite, argon2, HMAC) then failed with a 500. A JSON
body is read once here only when it holds a `\\uD800`-`\\uDFFF` escape at all, and orjson
(strict: it refuses lone surrogates, accepts proper pairs) decides.
"""

from __future__ import annotations

import re

import orjson
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]", re.ASCII)
_MESSAGE = "the JSON body holds a lone surrogate (\\ud800-\\udfff): not valid Unicode text"


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


def _has_lone_surrogate(body: bytes) -> bool:
    if not _SURROGATE_ESCAPE.search(body):
        return False
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return "surrogate" in str(exc)
    return False


class StrictJsonMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in messages)
        if _has_lone_surrogate(body):
            await JSONResponse({"detail": _MESSAGE}, status_code=400)(scope, receive, send)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

"""`/openapi.json`, `/docs` (Swagger UI) and `/redoc`, working under the app's CSP.

FastAPI's own `/docs` loads Swagger UI from a CDN and starts it with an inline script, both
refused by `script-src 'self'`. Here Swagger UI is a pinned copy vendored under
`static/vendor/swagger-ui` (`scripts/vendor-swagger-ui.sh`: swagger-ui-dist 5, which reads
the OpenAPI 3.1 FastAPI writes), and the page starts it with `/static/api-docs.js`.
`/redoc` sends the browser to `/docs` (one viewer is enough).
Who may read them is `CASESCOPE_API_DOCS`: logged-in users, anyone, or nobody.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from casescope.config import ApiDocs
from casescope.web.pages import render
from casescope.web.security import Principal, current_principal, get_state, known_principal


class DocsPath(StrEnum):
    OPENAPI = "/openapi.json"
    DOCS = "/docs"
    REDOC = "/redoc"


async def _anyone(request: Request) -> Principal | None:
    """Public docs: the caller if logged in (for the CSRF token of "Try it out"), else None."""
    return known_principal(request, get_state(request))


LoggedIn = Annotated[Principal | None, Depends(current_principal)]
Anyone = Annotated[Principal | None, Depends(_anyone)]


def docs_router(mode: ApiDocs) -> APIRouter:
    """The routes for `mode` (none when off); Swagger UI's own files are static (public)."""
    router = APIRouter(include_in_schema=False)
    if mode is ApiDocs.OFF:
        return router
    _add_routes(router, LoggedIn if mode is ApiDocs.AUTHENTICATED else Anyone)
    return router


def _add_routes(router: APIRouter, who: object) -> None:
    """The three routes, their caller found by the dependency `who` (an Annotated alias)."""

    def openapi(request: Request, principal: Principal | None) -> JSONResponse:
        return JSONResponse(request.app.openapi())

    def docs(request: Request, principal: Principal | None) -> Response:
        return render(request, "api_docs.html", principal, openapi_url=DocsPath.OPENAPI)

    def redoc(principal: Principal | None) -> RedirectResponse:
        return RedirectResponse(DocsPath.DOCS, status_code=307)

    for path, view in ((DocsPath.OPENAPI, openapi), (DocsPath.DOCS, docs), (DocsPath.REDOC, redoc)):
        view.__annotations__["principal"] = who  # resolved here, not from a string
        router.add_api_route(path, view, methods=["GET"])


def add_api_docs(app: FastAPI, mode: ApiDocs) -> None:
    app.include_router(docs_router(mode))

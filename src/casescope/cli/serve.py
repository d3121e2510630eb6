"""`casescope serve`: the web app and JSON API (docs/web.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from casescope.cli.common import friendly_errors
from casescope.config import get_settings
from casescope.logs import setup_logging


@friendly_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
) -> None:
    """Run the web app; needs CASESCOPE_SECRET_KEY. It owns the event index while it runs."""
    import uvicorn  # only `serve` pays for the server

    from casescope.web.app import create_app

    settings = get_settings()
    settings.ensure_dirs()
    setup_logging(settings, "serve")
    app = create_app(settings, bind_host=host)  # refuses a missing or placeholder secret key
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)

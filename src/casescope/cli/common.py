"""What every command needs: settings, logging, the metadata DB, and error reporting."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from casescope.cli.logs import setup_logging
from casescope.config import Settings, get_settings
from casescope.errors import CasescopeError
from casescope.model.db import Database

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class AppContext:
    settings: Settings
    db: Database


def open_app(role: str) -> AppContext:
    settings = get_settings()
    settings.ensure_dirs()
    setup_logging(settings, role)
    return AppContext(settings, Database(settings))


def friendly_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Show a CasescopeError as one clear line and exit 1 (no traceback for expected errors)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CasescopeError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper

"""What every command needs: settings, logging, the metadata DB, and error reporting."""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, ParamSpec, TextIO, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from casescope.config import Settings, get_settings
from casescope.display import REORDERING
from casescope.errors import CasescopeError
from casescope.logs import setup_logging

# The metadata DB and the index come with SQLAlchemy, the models and the store: imported
# when a command opens them, so that `ingest` can start its pool before paying for them
# (jobs/pool_process.py).
if TYPE_CHECKING:
    from casescope.model.db import Database
    from casescope.store.index import EventIndex

#: Width of output that goes to a file or a pipe (COLUMNS, when set, wins): Rich's default of
#: 80 columns cut the cells of wide tables such as `files`.
PIPED_WIDTH = 160


def _width(stream: TextIO) -> int | None:
    return None if "COLUMNS" in os.environ or stream.isatty() else PIPED_WIDTH


console = Console(width=_width(sys.stdout))
err_console = Console(stderr=True, width=_width(sys.stderr))

#: C0 controls but tab and newline, DEL, and C1 controls: what a terminal acts on; and the
#: characters that reorder the text after them (`display.REORDERING`).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f" + "".join(sorted(REORDERING)) + "]")

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class AppContext:
    settings: Settings
    db: Database


def command_settings(role: str) -> Settings:
    """A command's settings, its home's folders made and its logging set up."""
    settings = get_settings()
    settings.ensure_dirs()
    setup_logging(settings, role)
    return settings


def open_app(role: str, settings: Settings | None = None) -> AppContext:
    """Settings (`command_settings`, unless given), logging and the metadata DB of a
    command; a CASESCOPE_INDEX_URL that cannot be used fails here, before any work
    (store/index_url.py, `check_index_url`)."""
    from casescope.model.db import Database
    from casescope.store.index_url import check_index_url

    if settings is None:
        settings = command_settings(role)
    check_index_url(settings)
    return AppContext(settings, Database(settings))


@contextmanager
def loaded_index(ctx: AppContext, role: str) -> Iterator[EventIndex]:
    """The event index, opened as its owner (store/owner.py) for the one command this
    process runs, with the files that wait for a load loaded first, so that what a command
    reads is complete."""
    # the loader comes with the Arrow and Parquet stack: imported by the commands that open
    # the index, when they open it, not by those that read the metadata DB alone
    from casescope.store.loader import load_pending
    from casescope.store.owner import open_index

    with open_index(ctx.settings, role=role, short_lived=True) as index:
        load_pending(ctx.db, index, ctx.settings)
        yield index


def shown(value: object) -> Text:
    """Text for the terminal from what others wrote (event fields, case names, paths, rule
    titles): printed as it is, never read as Rich markup, and with control characters as
    visible escapes (ESC as \\x1b, RIGHT-TO-LEFT OVERRIDE as \\u202e), so a log cannot
    retitle, clear or recolour the terminal, nor show text in another order than it has."""
    return Text(escaped(value))


def escaped(value: object) -> str:
    """The text of `shown()`: control characters as visible escapes, None as nothing."""
    text = "" if value is None else str(value)
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def friendly_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Show a CasescopeError as one clear line and exit 1 (no traceback for expected errors)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CasescopeError as exc:
            err_console.print(Text("error: ", style="bold red") + shown(exc), highlight=False)
            raise typer.Exit(1) from None
        except ValidationError as exc:
            if exc.title != Settings.__name__:
                raise
            for problem in setting_problems(exc):
                err_console.print(Text("error: ", style="bold red") + shown(problem))
            raise typer.Exit(1) from None

    return wrapper


def setting_problems(exc: ValidationError) -> list[str]:
    """One line per refused setting, named as it is set (`CASESCOPE_WORKERS: ...`)."""
    return [
        f"CASESCOPE_{'_'.join(map(str, error['loc'])).upper()}: {error['msg']}"
        for error in exc.errors(include_url=False)
    ]


#: `--map COLUMN=FIELD` (repeatable), for `ingest` and `reindex`.
MapOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        help="NDJSON/CSV field for a core column, e.g. --map ts=EventTime "
        "--map computer=Host (see docs/parsing.md).",
    ),
]


def parse_field_map(pairs: list[str] | None) -> dict[str, str]:
    """`--map` pairs as a field map, checked before anything is copied or queued."""
    mapping = {}
    for pair in pairs or []:
        column, sep, source = pair.partition("=")
        if not sep or not column.strip() or not source.strip():
            raise CasescopeError(f"--map takes COLUMN=FIELD, got {pair!r}")
        mapping[column.strip()] = source.strip()
    # the parse package (pyarrow, polars) loads only for the commands that take --map
    from casescope.parse.fieldmap import check_field_map

    try:
        check_field_map(mapping)
    except ValueError as exc:
        raise CasescopeError(str(exc).replace("field map", "--map")) from None
    return mapping

"""`casescope case ...`: create and list cases."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from casescope.cli.common import console, friendly_errors, open_app
from casescope.services.cases import create_case, list_cases

app = typer.Typer(help="Create and list cases.", no_args_is_help=True)


@app.command("create")
@friendly_errors
def create(
    name: Annotated[str, typer.Argument(help="Case name (unique).")],
    description: Annotated[str, typer.Option(help="Free-text description.")] = "",
) -> None:
    """Create a case."""
    ctx = open_app("case create")
    case = create_case(ctx.db, name, description)
    console.print(f"created case [bold]{case.name}[/] (id {case.id})", highlight=False)


@app.command("list")
@friendly_errors
def list_() -> None:
    """List cases with their file, event and failure counts."""
    ctx = open_app("case list")
    table = Table("id", "name", "files", "events", "failed", "description")
    for case in list_cases(ctx.db):
        table.add_row(
            str(case.id),
            case.name,
            str(case.files),
            f"{case.events:,}",
            str(case.failed),
            case.description,
        )
    console.print(table)

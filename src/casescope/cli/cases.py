"""`casescope case ...`: create and list cases."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.filesize import decimal
from rich.table import Column
from rich.text import Text

from casescope.cli import case_admin, case_bundle
from casescope.cli.common import console, friendly_errors, open_app, shown
from casescope.cli.output import OutputFormat, format_option, write_rows
from casescope.cli.tables import Listing
from casescope.model.enums import FileStatus, FileType
from casescope.services.cases import create_case, get_case, list_cases
from casescope.services.evidence_list import (
    ALL_FILES,
    FileQuery,
    FileSort,
    SortOrder,
    file_page,
)

app = typer.Typer(
    help="Create, list, show, change, close, reopen, delete, export and import cases.",
    no_args_is_help=True,
)


@app.command("create")
@friendly_errors
def create(
    name: Annotated[str, typer.Argument(help="Case name (unique).")],
    description: Annotated[str, typer.Option(help="Free-text description.")] = "",
) -> None:
    """Create a case."""
    ctx = open_app("case create")
    case = create_case(ctx.db, name, description)
    console.print(Text("created case ") + shown(case.name) + Text(f" (id {case.id})"))


@app.command("list")
@friendly_errors
def list_() -> None:
    """List cases with their file, event and failure counts."""
    ctx = open_app("case list")
    table = Listing("id", "name", "status", "files", "events", "failed", "rejected", "description")
    for case in list_cases(ctx.db):
        table.add_row(
            str(case.id),
            shown(case.name),
            case.status.value,
            str(case.files),
            f"{case.events:,}",
            str(case.failed),
            str(case.rejected),
            shown(case.description),
        )
    console.print(table)


for _name, _command in (
    ("show", case_admin.show),
    ("set", case_admin.set_),
    ("close", case_admin.close),
    ("reopen", case_admin.reopen),
    ("delete", case_admin.delete),
    ("export", case_bundle.export),
    ("import", case_bundle.import_),
):
    app.command(_name)(_command)


def file_columns() -> list[Column]:
    """The columns of `files` (bench/cli_table.py prints the same table)."""
    return [
        Column("id", no_wrap=True, justify="right"),
        Column("status", no_wrap=True),
        Column("type", no_wrap=True),
        Column("size", no_wrap=True, justify="right"),
        Column("events", no_wrap=True, justify="right"),
        Column("path", overflow="fold"),
        Column("sha256", no_wrap=True),
        Column("error or warnings", overflow="fold", min_width=16),
    ]


@friendly_errors
def files(
    case: Annotated[str, typer.Option("--case", "-c", help="Case name.")],
    status: Annotated[
        FileStatus | None, typer.Option(help="Only files in this status (e.g. failed).")
    ] = None,
    name: Annotated[str, typer.Option(help="Only files whose path holds this (any case).")] = "",
    file_type: Annotated[
        FileType | None, typer.Option("--type", help="Only files of this format.")
    ] = None,
    sort: Annotated[FileSort, typer.Option(help="Order by this column.")] = FileSort.ID,
    desc: Annotated[bool, typer.Option("--desc", help="Largest / latest first.")] = False,
    fmt: Annotated[OutputFormat, format_option()] = OutputFormat.TABLE,
) -> None:
    """A case's files: id (for `reindex --file`), status, size, events, path, sha256, problems."""
    ctx = open_app("files")
    order = SortOrder.DESC if desc else SortOrder.ASC
    wanted = FileQuery(status, name.strip(), file_type, sort, order, per_page=ALL_FILES)
    rows = file_page(ctx.db, get_case(ctx.db, case).id, wanted).rows
    if fmt is not OutputFormat.TABLE:
        write_rows(rows, fmt)
        return
    table = Listing(*file_columns(), box=box.SIMPLE_HEAD)
    for row in rows:
        status_text = f"{row.status} (hidden)" if row.hidden else row.status
        table.add_row(
            str(row.id),
            status_text,
            row.file_type,
            decimal(row.size_bytes),
            f"{row.event_count:,}",
            shown(row.name),
            row.sha256[:12],
            shown(row.error or row.warnings.partition("\n")[0]),
        )
    console.print(table)

"""`casescope case show|set|close|reopen|delete`: a case's settings and its deletion."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.filesize import decimal
from rich.text import Text

from casescope.cli.common import console, friendly_errors, open_app, shown
from casescope.cli.tables import Listing
from casescope.errors import CasescopeError
from casescope.model.enums import CaseStatus
from casescope.services.case_lifecycle import (
    CaseChange,
    CaseSettings,
    case_id_by_name,
    case_settings,
    update_case,
)
from casescope.store.owner import open_index

if TYPE_CHECKING:
    from casescope.services.case_delete import DeletionReport

CaseName = Annotated[str, typer.Argument(help="The case's name.")]


def _print_settings(settings: CaseSettings) -> None:
    table = Listing("setting", "value", show_header=False)
    table.add_row("id", str(settings.id))
    table.add_row("name", shown(settings.name))
    table.add_row("status", settings.status.value)
    table.add_row("owner", shown(settings.owner or "(nobody)"))
    table.add_row("created", settings.created_at.isoformat(timespec="seconds"))
    table.add_row("files", f"{settings.files:,}")
    table.add_row("events", f"{settings.events:,}")
    table.add_row("description", shown(settings.description))
    console.print(table)


@friendly_errors
def show(name: CaseName) -> None:
    """A case's settings: name, status (open/closed), owner, description, counts."""
    ctx = open_app("case show")
    _print_settings(case_settings(ctx.db, case_id_by_name(ctx.db, name)))


@friendly_errors
def set_(
    name: CaseName,
    rename: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    description: Annotated[str | None, typer.Option(help="A new description.")] = None,
    status: Annotated[
        CaseStatus | None, typer.Option(help="closed: read-only until reopened.")
    ] = None,
    owner: Annotated[str | None, typer.Option(help='A user name ("" for nobody).')] = None,
) -> None:
    """Change a case's settings (only those given); audited."""
    ctx = open_app("case set")
    change = CaseChange(rename, description, status, owner)
    _print_settings(update_case(ctx.db, case_id_by_name(ctx.db, name), change, "cli"))


def _set_status(name: str, status: CaseStatus) -> None:
    ctx = open_app(f"case {status.value}")
    change = CaseChange(status=status)
    settings = update_case(ctx.db, case_id_by_name(ctx.db, name), change, "cli")
    console.print(Text("case ") + shown(settings.name) + Text(f" is {settings.status.value}"))


@friendly_errors
def close(name: CaseName) -> None:
    """Close a case: read-only (no upload, ingest, re-process, marks...) until reopened."""
    _set_status(name, CaseStatus.CLOSED)


@friendly_errors
def reopen(name: CaseName) -> None:
    """Reopen a closed case."""
    _set_status(name, CaseStatus.OPEN)


def _print_report(report: DeletionReport, done: bool) -> None:
    verb = "removed" if done else "would remove"
    table = Listing("what", verb, title=f"case {report.name!r} (id {report.case_id})")
    for table_name, rows in sorted(report.rows.items()):
        table.add_row(f"rows of {table_name}", f"{rows:,}")
    table.add_row("events in the index", f"{report.index_rows:,}")
    table.add_row("evidence files (no other case's)", f"{report.evidence_files:,}")
    table.add_row("segments (no other case's)", f"{report.segments:,}")
    if done:
        table.add_row("disk freed", decimal(report.bytes_freed))
    console.print(table)


@friendly_errors
def delete(
    name: CaseName,
    yes: Annotated[
        bool, typer.Option("--yes", help="Do not ask: for scripts (the name is the argument).")
    ] = False,
) -> None:
    """Delete a case: its rows, events, and files no other case uses.

    Every row of the case, its events in the index, and its evidence files and segments that
    no other case uses are removed; nothing of any other case is touched. Asks for the name
    again (or `--yes`)."""
    # deleting brings the index's loader (Arrow, Parquet): not for `case list` and the rest
    from casescope.services.case_delete import delete_case, deletion_preview

    ctx = open_app("case delete")
    case_id = case_id_by_name(ctx.db, name)
    with open_index(ctx.settings, role="casescope case delete") as index:
        _print_report(deletion_preview(ctx.db, index, case_id), done=False)
        confirm = name if yes else typer.prompt("Type the case's name to delete it")
        if confirm != name:
            raise CasescopeError("the name typed does not match: nothing was deleted")
        report = delete_case(ctx.db, index, ctx.settings, case_id, confirm, "cli")
    _print_report(report, done=True)

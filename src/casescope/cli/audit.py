"""`casescope audit`: the audit log, newest first."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.table import Column
from rich.text import Text

from casescope.cli.common import console, friendly_errors, open_app, shown
from casescope.cli.output import OutputFormat, format_option, write_rows
from casescope.cli.tables import Listing
from casescope.model.enums import AuditAction
from casescope.services.audit_log import AuditQuery, AuditView, audit_page, read_time, row_dict
from casescope.services.cases import get_case


@friendly_errors
def audit(
    case: Annotated[str | None, typer.Option("--case", "-c", help="Only this case.")] = None,
    action: Annotated[
        str | None,
        typer.Option(
            help="Only this action, named noun.verb: e.g. intake.refused, step.indexing, "
            "event.export, user.login (an unknown name lists them all). Deprecated but "
            "still taken: the older names (intake_refused, indexing, export...)."
        ),
    ] = None,
    view: Annotated[
        AuditView,
        typer.Option(
            help="Which rows: people's actions, casescope's own (intake, worker pool), "
            "pipeline steps, or all."
        ),
    ] = AuditView.ALL,
    user: Annotated[
        str, typer.Option("--user", help="Only rows whose actor holds this (web:alice, cli).")
    ] = "",
    since: Annotated[
        str, typer.Option(help="From this time (ISO 8601; UTC unless it has an offset).")
    ] = "",
    until: Annotated[str, typer.Option(help="Before this time (ISO 8601).")] = "",
    limit: Annotated[int, typer.Option(help="Rows, newest first.", min=1)] = 200,
    fmt: Annotated[OutputFormat, format_option()] = OutputFormat.TABLE,
) -> None:
    """The audit log: every pipeline step and every action.

    Steps with their timing and counts; actions: intake, refusals at intake, exports,
    re-processing, rule and IOC changes, logins."""
    wanted = AuditAction.parse(action) if action is not None else None
    start, end = read_time(since), read_time(until)
    ctx = open_app("audit")
    case_id = get_case(ctx.db, case).id if case is not None else None
    query = AuditQuery(view, wanted, user.strip(), case_id, start, end, per_page=limit)
    rows = [row_dict(row) for row in audit_page(ctx.db, query).rows]
    if fmt is not OutputFormat.TABLE:
        write_rows(rows, fmt)
        return
    table = Listing(
        Column("at (UTC)", no_wrap=True),
        Column("actor", overflow="fold"),
        Column("action", no_wrap=True),
        Column("case", no_wrap=True, justify="right"),
        Column("file", no_wrap=True, justify="right"),
        Column("ok", no_wrap=True),
        Column("detail", overflow="fold"),
        box=box.SIMPLE_HEAD,
    )
    for row in rows:
        table.add_row(
            row["at"][:19].replace("T", " "),
            shown(row["actor"]),
            row["action"],
            "" if row["case_id"] is None else str(row["case_id"]),
            "" if row["file_id"] is None else str(row["file_id"]),
            "yes" if row["ok"] else Text("no", style="red"),
            shown(row["detail"]),
        )
    console.print(table)

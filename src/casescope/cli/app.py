"""The `casescope` command: a thin shell over the services (parse args, call, render)."""

from __future__ import annotations

import typer

from casescope.cli import cases, ingest, iocs, jobs, rules, search
from casescope.cli import serve as serve_cmd
from casescope.cli import users as users_cmd

app = typer.Typer(
    name="casescope",
    help="DFIR evidence platform: ingest EVTX/NDJSON/CSV, search, detect, hunt, export.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(cases.app, name="case")
app.add_typer(rules.app, name="rules")
app.command("detections")(rules.detections)
app.add_typer(iocs.app, name="ioc")
app.command("hits")(iocs.hits)
app.command("ingest")(ingest.ingest)
app.command("worker")(jobs.worker)
app.command("status")(jobs.status)
app.command("reindex")(jobs.reindex)
app.command("doctor")(jobs.doctor)
app.command("search")(search.search)
app.command("export")(search.export)
app.add_typer(users_cmd.app, name="user")
app.command("serve")(serve_cmd.serve)


def main() -> None:
    app()

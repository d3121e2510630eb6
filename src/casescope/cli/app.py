"""The `casescope` command: a thin shell over the services (parse args, call, render).

Commands are imported when they run, not up front: `casescope ingest` owns the chDB index
for the whole load and `casescope worker` is the parent of every worker, so each module
it would import for other commands (the web app, the Sigma engine, ...) is memory held
for hours. `casescope --help` still lists every command.
"""

from __future__ import annotations

import importlib

import click
import typer
from typer.core import TyperGroup

from casescope.collector import tune_collector

#: Command name -> (module under `casescope.cli`, attribute): a Typer app or a function.
COMMANDS: dict[str, tuple[str, str]] = {
    "case": ("cases", "app"),
    "ingest": ("ingest", "ingest"),
    "files": ("cases", "files"),
    "status": ("jobs", "status"),
    "search": ("search", "search"),
    "export": ("search", "export"),
    "report": ("report", "report"),
    "rules": ("rules", "app"),
    "detections": ("detections", "detections"),
    "exclusions": ("exclusions", "app"),
    "ioc": ("iocs", "app"),
    "hits": ("iocs", "hits"),
    "mark": ("marks", "app"),
    "tags": ("marks", "tags"),
    "note": ("marks", "note_app"),
    "reindex": ("jobs", "reindex"),
    "jobs": ("jobs", "app"),
    "worker": ("jobs", "worker"),
    "doctor": ("jobs", "doctor"),
    "audit": ("audit", "audit"),
    "user": ("users", "app"),
    "serve": ("serve", "serve"),
    "migrate": ("migrate", "app"),
}


def load_command(name: str) -> click.Command:
    """The click command for `name`, importing its module now."""
    module_name, attribute = COMMANDS[name]
    target = getattr(importlib.import_module(f"casescope.cli.{module_name}"), attribute)
    if not isinstance(target, typer.Typer):
        single = typer.Typer(add_completion=False)
        # a command may bring its own click class (`search`: `QueryCommand`)
        single.command(name, cls=getattr(target, "command_class", None))(target)
        target = single
    target._add_completion = False  # as `add_typer` would: completion is the top level's business
    command = typer.main.get_command(target)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """A command group whose commands are imported on first use (see the module doc)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.commands[cmd_name] = load_command(cmd_name)
        return self.commands.get(cmd_name)


app = typer.Typer(
    name="casescope",
    cls=LazyGroup,
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def casescope() -> None:
    """DFIR evidence platform: ingest EVTX/NDJSON/CSV, search, detect, hunt, export."""


def main() -> None:
    tune_collector()
    app()

"""The `casescope` command: a thin shell over the services (parse args, call, render).

Commands are imported when they run, not up front: `casescope ingest` owns the chDB index
for the whole load and `casescope worker` is the parent of every worker, so each module
it would import for other commands (the web app, the Sigma engine, ...) is memory held
for hours; and a command an analyst types many times a day starts in a fraction of a second
only if it imports what it uses and no more (bench/cli.py). `casescope --help` lists every
command with the summary kept in COMMANDS, importing none of them.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import sys
import threading
from typing import TYPE_CHECKING, NamedTuple

import typer
from typer.core import TyperCommand, TyperGroup

from casescope.collector import tune_collector

if TYPE_CHECKING:
    from typer._click import Command, Context  # typer vendors click


class Entry(NamedTuple):
    """Where a command lives, and the summary `casescope --help` lists for it (its own help's
    first paragraph, kept here so that the listing imports no command; a test compares)."""

    module: str  # under `casescope.cli`
    attribute: str  # a Typer app or a function
    summary: str


#: Command name -> its entry, in the order `--help` lists them.
COMMANDS: dict[str, Entry] = {
    "case": Entry(
        "cases",
        "app",
        "Create, list, show, change, close, reopen, delete, export and import cases.",
    ),
    "ingest": Entry(
        "ingest",
        "ingest",
        "Copy evidence into a case, then parse, index, detect and hunt every file.",
    ),
    "files": Entry(
        "cases",
        "files",
        "A case's files: id (for `reindex --file`), status, size, events, path, sha256, problems.",
    ),
    "status": Entry(
        "status",
        "status",
        "Files per status, events indexed, failures, queue depth, live workers and memory.",
    ),
    "search": Entry(
        "search", "search", "Search a case's events (query language: docs/query-language.md)."
    ),
    "export": Entry(
        "search", "export", "Stream every (matching) event of a case as CSV or JSONL — no row cap."
    ),
    "report": Entry(
        "report",
        "report",
        "Write the case story (events and text, in order) as a report; audited.",
    ),
    "rules": Entry("rules", "app", "Import and list Sigma rules."),
    "detections": Entry(
        "detections",
        "detections",
        "Sigma detections of a case: by rule (table) or every hit (jsonl/csv).",
    ),
    "exclusions": Entry(
        "exclusions",
        "app",
        "Hide a case's known-benign Sigma hits (kept, countable, restorable).",
    ),
    "ioc": Entry("iocs", "app", "Manage a case's IOCs (indicators of compromise)."),
    "hits": Entry(
        "iocs", "hits", "IOC hits of a case: a summary by IOC (table) or every hit (jsonl/csv)."
    ),
    "mark": Entry(
        "marks", "app", "Tag, star or hide events (or take the mark off), by id or by query."
    ),
    "tags": Entry("marks", "tags", "A case's tags with their number of events, most used first."),
    "note": Entry("marks", "note_app", "Notes on events: add, list, edit, delete."),
    "reindex": Entry(
        "jobs",
        "reindex",
        "Re-parse and re-index files of a case (all of them, or the given ids).",
    ),
    "jobs": Entry(
        "jobs",
        "app",
        "Bulk operations (ingests, uploads, re-processing): list, pause, resume, cancel, retry.",
    ),
    "worker": Entry(
        "jobs", "worker", "Run a pool of worker processes that take jobs from the queue."
    ),
    "doctor": Entry(
        "jobs",
        "doctor",
        "Check the deployment, then that every file is accounted for.",
    ),
    "audit": Entry(
        "audit",
        "audit",
        "The audit log: every pipeline step and every action.",
    ),
    "user": Entry("users", "app", "Web app users and their API tokens (see docs/web.md)."),
    "serve": Entry(
        "serve",
        "serve",
        "Run the web app; needs CASESCOPE_SECRET_KEY. It owns the event index while it runs.",
    ),
    "migrate": Entry(
        "migrate",
        "app",
        "Copy a deployment (home, database, index) into another, in phases: config, findings, "
        "events (see docs/migration.md).",
    ),
}


def load_command(name: str) -> Command:
    """The click command for `name`, importing its module now."""
    entry = COMMANDS[name]
    module = importlib.import_module(f"casescope.cli.{entry.module}")
    target = getattr(module, entry.attribute)
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
    """A command group whose commands are imported on first use (see the module doc); its
    help lists them from COMMANDS without importing any."""

    _listing = False

    def list_commands(self, ctx: Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            if self._listing:  # only its name and summary are read
                return TyperCommand(cmd_name, help=COMMANDS[cmd_name].summary)
            self.commands[cmd_name] = load_command(cmd_name)
        return self.commands.get(cmd_name)

    def format_help(self, ctx: Context, formatter: object) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)  # type: ignore[arg-type]
        finally:
            self._listing = False


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
    try:
        app()
    except SystemExit as done:  # how click ends every command, its exit code in it
        exit_now(done.code)
        raise


def exit_now(code: object) -> None:
    """End a command that loaded chDB without the library's teardown at interpreter exit
    (its C++ destructors: thread pools, caches, contexts), which took 0.3-0.6 s of every
    command that opened the index (`bench/cli.py`). The command is over: the index was
    closed by its owner (INSERTs are on disk when they return; a merge cut short is redone
    by the next owner, as after Ctrl-C) and the kernel releases the owner's lock. The
    atexit handlers (logging, multiprocessing) still run and the output is flushed. Returns
    without doing anything, to exit as usual, for an exit code that is not a number or
    while a thread that exit would wait for still runs."""
    if "chdb" not in sys.modules or not (code is None or isinstance(code, int)):
        return
    if any(not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        return
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe, as at any exit
            stream.flush()
    os._exit(code or 0)

"""`casescope migrate plan|run|verify|status`: one deployment into another (docs/migration.md)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Column
from rich.text import Text

from casescope.cli.common import console, err_console, friendly_errors, shown
from casescope.cli.tables import Listing
from casescope.errors import CasescopeError
from casescope.migrate import runner
from casescope.migrate.checkpoints import all_checkpoints
from casescope.migrate.endpoints import open_target, settings_from
from casescope.migrate.events import DEFAULT_BATCH_FILES, DEFAULT_JOBS
from casescope.migrate.phases import Phase
from casescope.migrate.plan import PhasePlan, plan
from casescope.migrate.rows import DEFAULT_BATCH_ROWS
from casescope.migrate.verify import VerifyReport

app = typer.Typer(
    help="Copy a deployment (home, database, index) into another, in phases: config, "
    "findings, events (see docs/migration.md).",
    no_args_is_help=True,
)

FromOpt = Annotated[
    Path,
    typer.Option(
        "--from", help="Source: a home directory, or an env file of CASESCOPE_* settings."
    ),
]
ToOpt = Annotated[
    Path,
    typer.Option("--to", help="Target: a home directory, or an env file of CASESCOPE_* settings."),
]
PhaseOpt = Annotated[
    Phase | None, typer.Option("--phase", help="Only this phase (default: all, in order).")
]
CasesOpt = Annotated[
    str | None,
    typer.Option("--cases", help="Only these cases (comma-separated names; default: all)."),
]
AsOpt = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="The one case of --cases takes this name on the target (whose own case has "
        "its name), with new keys there; give it to verify too.",
    ),
]


#: More copying threads than this only queue on the disk.
MAX_JOBS = 32


def _phases(phase: Phase | None) -> list[Phase]:
    return [phase] if phase is not None else list(Phase)


def _names(cases: str | None) -> list[str] | None:
    names = [name.strip() for name in (cases or "").split(",") if name.strip()]
    return names or None


@app.command("plan")
@friendly_errors
def plan_(source: FromOpt, target: ToOpt, phase: PhaseOpt = None, cases: CasesOpt = None) -> None:
    """What each phase would copy (rows, files, bytes) and an estimated time.

    The estimate is from rates measured by bench/migrate.py."""
    with runner.endpoints(source, target, _names(cases)) as ends:
        plans = plan(ends.source, _phases(phase), list(ends.cases))
    _print_plan(plans)


def _print_plan(plans: list[PhasePlan]) -> None:
    table = Listing(
        "phase",
        Column("rows", justify="right"),
        Column("files", justify="right"),
        Column("bytes", justify="right"),
        Column("estimate", justify="right"),
        box=box.SIMPLE_HEAD,
    )
    for item in plans:
        rows = f"{item.rows:,} events" if item.phase is Phase.EVENTS else f"{item.rows:,}"
        size = decimal(item.bytes) if item.phase is Phase.EVENTS else ""
        files = f"{item.files:,}" if item.phase is Phase.EVENTS else ""
        table.add_row(item.phase.value, rows, files, size, f"{item.seconds:.1f} s")
    console.print(table)
    console.print("estimates: constant rates measured by bench/migrate.py (docs/migration.md)")


def _progress(plans: dict[Phase, PhasePlan]) -> tuple[Progress, runner.Progress]:
    """A bar per phase, sized by the plan: rows for config and findings, bytes for events."""
    bar = Progress(
        TextColumn("{task.description:<34}"),
        BarColumn(),
        TextColumn("{task.fields[done]}"),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=err_console,
    )
    tasks: dict[Phase, TaskID] = {}
    current: list[Phase] = []

    def on_phase(phase: Phase) -> None:
        item = plans[phase]
        total = item.bytes if phase is Phase.EVENTS else item.rows
        tasks[phase] = bar.add_task(phase.value, total=total or None, done="", rate="")
        current[:] = [phase]

    def _show(label: str, advance: int, done: str, unit: str) -> None:
        task = tasks[current[0]]
        bar.update(task, advance=advance, description=label, done=done)
        speed = bar.tasks[task].speed
        if speed:
            rate = decimal(int(speed)) if unit == "B" else f"{speed:,.0f} {unit}"
            bar.update(task, rate=f"{rate}/s")

    def on_rows(table: str, rows: int) -> None:
        done = int(bar.tasks[tasks[current[0]]].completed) + rows
        _show(f"{current[0].value}: {table}", rows, f"{done:,} rows", "rows")

    files: list[int] = [0]

    def on_file(count: int, size: int) -> None:
        files[0] += count
        done = int(bar.tasks[tasks[Phase.EVENTS]].completed) + size
        _show("events: evidence, segments", size, f"{files[0]:,} files {decimal(done)}", "B")

    return bar, runner.Progress(on_rows=on_rows, on_file=on_file, on_phase=on_phase)


@app.command("run")
@friendly_errors
def run(
    source: FromOpt,
    target: ToOpt,
    phase: PhaseOpt = None,
    cases: CasesOpt = None,
    batch_rows: Annotated[
        int, typer.Option(min=1, help="Rows copied per transaction (config, findings).")
    ] = DEFAULT_BATCH_ROWS,
    batch_files: Annotated[
        int, typer.Option(min=1, help="Files copied per index load (events).")
    ] = DEFAULT_BATCH_FILES,
    jobs: Annotated[
        int,
        typer.Option(
            min=1,
            max=MAX_JOBS,
            help="Threads copying and hashing evidence and segments (events; default: "
            "the cores, at most 4).",
        ),
    ] = DEFAULT_JOBS,
    redo: Annotated[
        bool,
        typer.Option(
            "--redo",
            help="First delete what the target holds of the --cases named (rows, events, "
            "files no other case uses), then copy them again.",
        ),
    ] = False,
    as_: AsOpt = None,
) -> None:
    """Copy the phases (all, or --phase) of the cases (all, or --cases).

    Run it again to go on after an interruption: done rows and files are not copied twice."""
    started = time.perf_counter()
    if redo and not _names(cases):
        raise CasescopeError("--redo re-does the cases named by --cases: name them")
    with runner.endpoints(source, target, _names(cases), as_) as ends:
        if redo:
            runner.redo(ends)
        chosen = _phases(phase)
        plans = {item.phase: item for item in plan(ends.source, chosen, list(ends.cases))}
        bar, progress = _progress(plans)
        with bar:
            sizes = runner.Batches(batch_rows, batch_files, jobs=jobs)
            report = runner.run(ends, chosen, progress, sizes)
    seconds = time.perf_counter() - started
    console.print(f"migrated {len(ends.cases)} case(s) in {seconds:.1f} s")
    if report is not None:
        console.print(
            f"events phase: {report.files:,} files, {decimal(report.bytes)} copied, "
            f"{report.rows:,} events loaded"
        )
        for problem in report.problems:
            line = f"file {problem['file_id']} {problem['path']}: {problem['reason']}"
            err_console.print(Text("problem: ", style="bold red") + shown(line))
        if report.problems:
            raise typer.Exit(1)


def _print_checks(report: VerifyReport, everything: bool) -> None:
    table = Listing(
        "phase",
        Column("what", overflow="fold"),
        Column("case", overflow="fold"),
        Column("source", overflow="fold"),
        Column("target", overflow="fold"),
        "ok",
        box=box.SIMPLE_HEAD,
    )
    for check in report.checks:
        if everything or not check.ok:
            mark = Text("yes") if check.ok else Text("NO", style="bold red")
            table.add_row(
                check.phase, shown(check.what), shown(check.unit), check.source, check.target, mark
            )
    console.print(table)


@app.command("verify")
@friendly_errors
def verify(
    source: FromOpt,
    target: ToOpt,
    phase: Annotated[
        Phase | None, typer.Option("--phase", help="Only this phase's checks (default: all).")
    ] = None,
    cases: CasesOpt = None,
    login: Annotated[
        str | None,
        typer.Option(help="Also check this user's password on both sides (prompted)."),
    ] = None,
    token: Annotated[
        bool, typer.Option("--token", help="Also check an API token on the target (prompted).")
    ] = False,
    failures_only: Annotated[
        bool, typer.Option("--failures-only", help="Print only the checks that failed.")
    ] = False,
    as_: AsOpt = None,
) -> None:
    """Compare source and target; exits 1 on any difference.

    Rows and checksums per table and case, events per file, evidence present, saved search
    counts."""
    credentials = (login, typer.prompt(f"password of {login}", hide_input=True)) if login else None
    value = typer.prompt("API token", hide_input=True) if token else None
    with runner.endpoints(source, target, _names(cases), as_) as ends:
        report = runner.verify(ends, credentials, value, phase)
    _print_checks(report, not failures_only)
    failed = sum(not check.ok for check in report.checks)
    if failed:
        err_console.print(Text(f"verify: {failed} difference(s)", style="bold red"))
        raise typer.Exit(1)
    console.print(f"verify: {len(report.checks)} checks passed")


@app.command("status")
@friendly_errors
def status(target: ToOpt) -> None:
    """The target's migration checkpoints and the problems recorded.

    Per source, phase and table: rows and bytes copied, done or not."""
    db = open_target(settings_from(target))
    try:
        rows = all_checkpoints(db)
    finally:
        db.dispose()
    table = Listing(
        Column("source", overflow="fold"),
        "phase",
        "table",
        Column("case id", justify="right"),
        Column("rows", justify="right"),
        Column("bytes", justify="right"),
        "done",
        Column("problems", overflow="fold"),
        box=box.SIMPLE_HEAD,
    )
    for row in rows:
        table.add_row(
            shown(row.source),
            row.phase,
            row.table_name,
            str(row.unit),
            f"{row.rows:,}",
            decimal(row.bytes) if row.bytes else "",
            "yes" if row.done else "no",
            shown(row.problems),
        )
    console.print(table)

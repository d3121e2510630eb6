"""`casescope ingest`: take evidence into a case and process it to completion."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from casescope.cli.common import (
    AppContext,
    MapOpt,
    command_settings,
    console,
    friendly_errors,
    open_app,
    parse_field_map,
    shown,
)
from casescope.config import Settings
from casescope.jobs.pool_process import AWAIT_WORK_SECONDS, StartedPool, start_pool

if TYPE_CHECKING:
    from casescope.evidence.intake import IntakeReport
    from casescope.jobs.launcher import PoolKeeper
    from casescope.model.tables import Case

REJECTED_SHOWN = 100
DUPLICATES_SHOWN = 20


@friendly_errors
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders (walked recursively).")],
    case: Annotated[str, typer.Option("--case", "-c", help="Case name (created if new).")],
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Queue and return.")] = False,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes to start.")] = None,
    field_map: MapOpt = None,
) -> None:
    """Copy evidence into a case, then parse, index, detect and hunt every file."""
    settings = command_settings("ingest")
    # The pool and its workers' template take ~2 s of CPU to start: begun now, before this
    # command imports the metadata DB, the models and intake, they start beside all that.
    early = None if no_wait else _pool_ahead(settings, paths, workers)
    request = _Request(paths, case, no_wait, workers, field_map)
    try:
        _ingest(settings, early, request)
    finally:
        if early is not None and not request.queued:
            early.end()  # it would wait for work that is not coming


@dataclass
class _Request:
    """What `ingest` was asked to do, and whether intake has queued a file yet."""

    paths: list[Path]
    case: str
    no_wait: bool
    workers: int | None
    field_map: list[str] | None
    queued: bool = False


def _pool_ahead(settings: Settings, paths: list[Path], workers: int | None) -> StartedPool | None:
    """A pool started before intake has queued anything (it waits for a first file), unless
    an input is missing: `check_sources` refuses the command then."""
    if not all(path.exists() for path in paths):
        return None
    return start_pool(settings, workers=workers, await_work=AWAIT_WORK_SECONDS)


def _ingest(settings: Settings, early: StartedPool | None, request: _Request) -> None:
    """The command once its pool is on its way."""
    from casescope.cli.follow import follow, print_outcome
    from casescope.evidence.intake import check_sources
    from casescope.jobs.launcher import PoolKeeper
    from casescope.services.case_lifecycle import ensure_open
    from casescope.services.cases import get_or_create_case
    from casescope.services.progress import FileSet

    ctx = open_app("ingest", settings)
    keeper = PoolKeeper(ctx.settings, ctx.db, workers=request.workers, pool=early)
    # a mistyped path: a clear error, no case, nothing copied
    request.paths = check_sources(request.paths)
    case_row, created = get_or_create_case(ctx.db, request.case)
    ensure_open(ctx.db, case_row.id)
    if created:
        console.print(Text("created case ") + shown(case_row.name))
    report = _take_in(ctx, keeper, case_row, request)
    _print_intake(report, case_row.name)
    _print_verification(ctx, case_row.id)
    if not report.queued:
        return
    files = FileSet(case_row.id, min(report.queued), max(report.queued))
    if request.no_wait:
        operation = report.operation_id
        console.print(f"queued as operation {operation}; follow with `casescope jobs list`")
        return
    follow(ctx, files, keeper=keeper)
    print_outcome(ctx, files, len(report.rejected))


def _take_in(
    ctx: AppContext, keeper: PoolKeeper, case_row: Case, request: _Request
) -> IntakeReport:
    """Copy the inputs into the case and queue them; workers start on the first batch."""
    from casescope.evidence.intake import ingest_paths
    from casescope.jobs.launcher import ensure_workers
    from casescope.model.enums import OperationKind
    from casescope.services.operations import intake_operation

    def on_batch(report: IntakeReport) -> None:
        if report.queued and not request.queued:
            request.queued = True
            if request.no_wait:
                ensure_workers(ctx.settings, ctx.db, workers=request.workers, detach=True)
            else:
                keeper.ensure()

    with console.status("taking in evidence...") as status:
        counter = {"n": 0}

        def on_file(_path: Path) -> None:
            counter["n"] += 1
            if counter["n"] % 100 == 0:
                status.update(f"taking in evidence... {counter['n']:,} files")

        mapping = parse_field_map(request.field_map)
        detail = ", ".join(str(p) for p in request.paths)
        with intake_operation(ctx.db, case_row.id, OperationKind.INGEST, "cli", detail) as op_id:
            return ingest_paths(
                ctx.db,
                ctx.settings,
                case_row,
                request.paths,
                field_map=mapping,
                on_file=on_file,
                on_batch=on_batch,
                operation_id=op_id,
            )


def _print_intake(report: IntakeReport, case_name: str) -> None:
    console.print(
        f"{report.total:,} files: {len(report.queued):,} queued, "
        f"{len(report.duplicates):,} duplicates, {len(report.empty):,} empty, "
        f"{len(report.rejected):,} rejected",
        highlight=False,
    )
    for path, existing in report.duplicates[:DUPLICATES_SHOWN]:
        console.print(Text(f"  duplicate of file {existing}: ") + shown(path))
    if len(report.duplicates) > DUPLICATES_SHOWN:
        console.print(f"  ... and {len(report.duplicates) - DUPLICATES_SHOWN:,} more duplicates")
    for path, reason in report.rejected[:REJECTED_SHOWN]:
        console.print(Text("  rejected ", style="red") + shown(path) + Text(": ") + shown(reason))
    if len(report.rejected) > REJECTED_SHOWN:
        more = len(report.rejected) - REJECTED_SHOWN
        console.print(
            Text(f"  ... and {more:,} more rejected: casescope audit --case ")
            + shown(shlex.quote(case_name))
            + Text(" --action intake.refused")
        )


def _print_verification(ctx: AppContext, case_id: int) -> None:
    """The end-of-intake proof: every file of the case is terminal or has its one job."""
    from casescope.services.doctor import verify_files

    with ctx.db.session() as session:
        result = verify_files(session, case_id)
    console.print(result.summary(), style=None if result.ok else "red", highlight=False)
    for file_id, problem in result.problems[:20]:
        console.print(Text(f"  file {file_id}: ", style="red") + shown(problem))
    if not result.ok:
        console.print("run `casescope doctor` to repair", highlight=False)

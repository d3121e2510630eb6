"""`casescope worker`, `reindex`, `doctor` and `jobs` (bulk operations)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.text import Text

from casescope.cli.common import (
    MapOpt,
    console,
    friendly_errors,
    open_app,
    parse_field_map,
    shown,
)
from casescope.cli.follow import follow, print_outcome
from casescope.cli.output import REPORT, OutputFormat, format_option
from casescope.cli.tables import Listing
from casescope.config import get_settings
from casescope.jobs.launcher import ensure_workers
from casescope.jobs.pool import run_pool
from casescope.model.enums import Operation
from casescope.services import operations
from casescope.services.cases import get_case
from casescope.services.deployment import Deployment, check_deployment
from casescope.services.doctor import run_doctor
from casescope.services.reprocess import requeue_files, retry_operation


@friendly_errors
def worker(
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default: cores).")
    ] = None,
    exit_when_idle: Annotated[
        bool, typer.Option("--exit-when-idle", help="Stop once the queue is empty.")
    ] = False,
) -> None:
    """Run a pool of worker processes that take jobs from the queue."""
    run_pool(get_settings(), workers, exit_when_idle=exit_when_idle)


@friendly_errors
def reindex(
    case: Annotated[str, typer.Option("--case", "-c", help="Case to re-index.")],
    file_ids: Annotated[
        list[int] | None, typer.Option("--file", help="Only these file ids (repeatable).")
    ] = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Queue and return.")] = False,
    field_map: MapOpt = None,
) -> None:
    """Re-parse and re-index files of a case (all of them, or the given ids).

    With --map, under a new field map (it replaces the one given at ingest)."""
    mapping = parse_field_map(field_map) if field_map else None
    ctx = open_app("reindex")
    case_row = get_case(ctx.db, case)
    files = requeue_files(
        ctx.db, ctx.settings, case_row.id, Operation.REINDEX, file_ids, field_map=mapping
    )
    console.print(
        f"queued {files.count:,} files for re-index (operation {files.operation_id})",
        highlight=False,
    )
    if files.count and not no_wait:
        follow(ctx, files.file_set)
        print_outcome(ctx, files.file_set)


@friendly_errors
def doctor(
    repair: Annotated[
        bool, typer.Option("--repair/--check", help="Repair what can be repaired.")
    ] = True,
    verify_evidence: Annotated[
        bool,
        typer.Option(
            "--verify-evidence",
            help="Also re-hash every evidence copy and compare it with the sha256 recorded "
            "at intake (reads all the evidence).",
        ),
    ] = False,
) -> None:
    """Check the deployment, then that every file is accounted for.

    The mode and its parts (metadata DB, event index, home) first; then every file: orphans
    re-queued, dead leases released."""
    ctx = open_app("doctor")
    deployment = check_deployment(ctx.settings, ctx.db)
    _print_deployment(deployment)
    report = run_doctor(ctx.db, ctx.settings, repair=repair, verify_evidence=verify_evidence)
    verb = "re-queued" if repair else "found"
    console.print(f"orphaned files {verb}: {len(report.orphans_requeued)}", highlight=False)
    console.print(f"expired leases released: {report.leases_expired}", highlight=False)
    console.print(f"stale worker rows removed: {report.stale_workers_removed}", highlight=False)
    console.print(f"files missing their segment: {len(report.segments_missing)}", highlight=False)
    bundles = "deleted" if repair else "found"
    console.print(f"unneeded load bundles {bundles}: {report.bundles_orphaned}", highlight=False)
    pieces = report.piece_dirs_orphaned
    console.print(f"unneeded segment piece folders {bundles}: {pieces}", highlight=False)
    for file_id, path in report.evidence_missing:
        console.print(Text(f"evidence missing file {file_id}: ", style="red") + shown(path))
    if verify_evidence:
        altered = len(report.evidence_altered)
        console.print(
            f"evidence copies re-hashed: {report.evidence_hashed}, changed since intake: {altered}",
            highlight=False,
        )
    for file_id, path, found in report.evidence_altered:
        console.print(
            Text(f"evidence changed file {file_id}: ", style="red")
            + shown(path)
            + Text(f" (sha256 now {found})")
        )
    console.print(report.verification.summary(), highlight=False)
    for file_id, problem in report.verification.problems[:50]:
        console.print(Text(f"  file {file_id}: ", style="red") + shown(problem))
    if not deployment.ok or (not report.healthy and not repair):
        raise typer.Exit(1)


def _print_deployment(deployment: Deployment) -> None:
    console.print(
        f"mode: {deployment.mode} (metadata DB: {deployment.db_dialect}, "
        f"event index: {deployment.index_transport})",
        highlight=False,
    )
    for check in deployment.checks:
        verdict = Text("ok", style="green") if check.ok else Text("FAILED", style="bold red")
        console.print(Text(f"{check.part}: ") + verdict + Text(" ") + shown(check.detail))


# --- `casescope jobs ...`: bulk operations (services/operations.py, docs/web.md "Jobs") ---

app = typer.Typer(
    help="Bulk operations (ingests, uploads, re-processing): list, pause, resume, cancel, retry.",
    no_args_is_help=True,
)
OperationArg = Annotated[int, typer.Argument(help="Operation id (see `casescope jobs list`).")]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


@app.command("list")
@friendly_errors
def list_jobs(
    case: Annotated[str | None, typer.Option("--case", "-c", help="Only this case.")] = None,
    limit: Annotated[int, typer.Option(help="Newest operations shown.", min=1)] = 20,
    fmt: Annotated[OutputFormat, format_option(REPORT)] = OutputFormat.TABLE,
) -> None:
    """Operations, newest first: state, files done/total, events, rate and ETA."""
    ctx = open_app("jobs")
    case_id = get_case(ctx.db, case).id if case else None
    progress = operations.list_operations(ctx.db, case_id, limit)
    if fmt is OutputFormat.JSON:
        console.print_json(json.dumps([p.as_dict() for p in progress]))
        return
    table = Listing(
        "id", "case", "kind", "state", "files", "failed", "paused", "events", "files/s", "eta"
    )
    for p in progress:
        table.add_row(
            str(p.id),
            str(p.case_id),
            p.kind,
            p.state,
            f"{p.files_finished:,}/{p.files_total:,}",
            f"{p.files_failed:,}",
            f"{p.files_paused:,}",
            f"{p.events:,}",
            f"{p.files_per_second:.1f}",
            _duration(p.eta_seconds),
        )
    console.print(table)


@app.command("pause")
@friendly_errors
def pause_job(operation_id: OperationArg) -> None:
    """Stop claims of the operation's files; files being processed finish."""
    ctx = open_app("jobs")
    paused = operations.pause(ctx.db, operation_id, "cli")
    console.print(f"operation {operation_id} paused: {paused:,} files wait", highlight=False)


@app.command("resume")
@friendly_errors
def resume_job(operation_id: OperationArg) -> None:
    """Queue a paused operation's files again (a worker pool is started if none runs)."""
    ctx = open_app("jobs")
    resumed = operations.resume(ctx.db, operation_id, "cli")
    if resumed:
        ensure_workers(ctx.settings, ctx.db, detach=True)
    console.print(f"operation {operation_id} resumed: {resumed:,} files queued", highlight=False)


@app.command("cancel")
@friendly_errors
def cancel_job(operation_id: OperationArg) -> None:
    """Cancel the queued and paused files; they return to their previous outcome."""
    ctx = open_app("jobs")
    cancelled = operations.cancel(ctx.db, operation_id, "cli")
    console.print(
        f"operation {operation_id} cancelled: {cancelled:,} files not processed", highlight=False
    )


@app.command("retry")
@friendly_errors
def retry_job(operation_id: OperationArg) -> None:
    """Process the operation's failed (or cancelled) files again, as a new operation."""
    ctx = open_app("jobs")
    done = retry_operation(ctx.db, ctx.settings, operation_id, "cli")
    if not done.count:
        console.print(f"operation {operation_id} has no failed files")
        return
    ensure_workers(ctx.settings, ctx.db, detach=True)
    console.print(
        f"{done.count:,} files queued again as operation {done.operation_id}", highlight=False
    )

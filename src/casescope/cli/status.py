"""`casescope status`: files per status, events indexed, failures, queue, workers."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.text import Text

from casescope.cli.common import console, friendly_errors, loaded_index, open_app, shown
from casescope.cli.file_problems import print_file_problems
from casescope.cli.output import REPORT, OutputFormat, format_option
from casescope.cli.tables import Listing
from casescope.errors import IndexBusyError
from casescope.model.enums import ACTIVE_JOB_STATES
from casescope.services.cases import get_case
from casescope.services.status import StatusReport, collect_status
from casescope.store.load_queue import load_waiting


@friendly_errors
def status(
    case: Annotated[str | None, typer.Option("--case", "-c", help="Only this case.")] = None,
    fmt: Annotated[OutputFormat, format_option(REPORT)] = OutputFormat.TABLE,
) -> None:
    """Files per status, events indexed, failures, queue depth, live workers and memory."""
    ctx = open_app("status")
    case_id = get_case(ctx.db, case).id if case else None
    stale = ctx.settings.heartbeat_seconds * 3
    if load_waiting(ctx.db):  # nobody loaded it yet: load it, unless another process can
        try:
            with loaded_index(ctx, role="casescope status"):
                pass
        except IndexBusyError:
            pass  # the index's owner loads what waits
    # from the metadata DB alone: opening the index costs more than the rest (bench/cli.py)
    report = collect_status(ctx.db, case_id=case_id, index=None, stale_after=stale)
    if fmt is OutputFormat.JSON:
        console.print_json(json.dumps(report.as_dict()))
    else:
        _render_status(report)


def _render_status(report: StatusReport) -> None:
    files = Listing("status", "files", title="files")
    for name, count in sorted(report.files_by_status.items()):
        files.add_row(name, f"{count:,}")
    files.add_row("(hidden: no events)", f"{report.hidden_files:,}")
    files.add_row("(awaiting index load)", f"{report.awaiting_index_load:,}")
    files.add_row("(with warnings)", f"{report.files_with_warnings:,}")
    console.print(files)
    indexed = report.events_indexed or 0
    console.print(f"events parsed: {report.events_parsed:,}  indexed: {indexed:,}", highlight=False)
    console.print(f"queue: {_queue_line(report.queue)}", highlight=False)
    _render_workers(report)
    if report.pool_failure is not None:
        console.print(
            Text(f"no worker runs: at {report.pool_failure.at} ", style="red")
            + shown(report.pool_failure.detail)
        )
    print_file_problems(report)


def _render_workers(report: StatusReport) -> None:
    """Each host with live workers and the files they hold, then each worker."""
    hosts = Listing("host", "workers", "files held", "rss MB", title="worker hosts")
    for h in report.hosts:
        held = f"{h.files_held:,}"
        if h.file_ids:
            more = ", …" if h.files_held > len(h.file_ids) else ""
            held += f" ({', '.join(map(str, h.file_ids))}{more})"
        hosts.add_row(shown(h.host), str(h.workers), held, f"{h.rss_mb:.0f}")
    console.print(hosts)
    workers = Listing("worker", "host", "pid", "rss MB", "tasks", "file", title="live workers")
    for w in report.workers:
        workers.add_row(
            w.id,
            shown(w.host),
            str(w.pid),
            f"{w.rss_mb:.0f}",
            str(w.tasks_done),
            str(w.current_file_id or ""),
        )
    console.print(workers)


def _queue_line(jobs: dict[str, int]) -> str:
    """Jobs waiting and running first (the queue), then the finished ones."""
    waiting = [f"{jobs[s]:,} {s}" for s in ACTIVE_JOB_STATES if jobs.get(s)]
    finished = [f"{s} {n:,}" for s, n in sorted(jobs.items()) if s not in ACTIVE_JOB_STATES]
    line = ", ".join(waiting) or "empty"
    return f"{line} (jobs finished: {', '.join(finished)})" if finished else line

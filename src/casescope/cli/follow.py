"""Follow queued work to the end with a Rich progress bar, loading the index as files finish.

The following process is the index owner (unless `casescope serve` is), so it loads ready
segments in batches while it waits (a large file's load pieces as soon as they are ready),
then compacts the index (merges run niced, so a large load leaves parts to merge); if the
worker pool dies, its jobs are released and a new one is started (`jobs.launcher.PoolKeeper`).
`print_outcome` then says how the files ended.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from casescope.cli.common import AppContext, console
from casescope.cli.file_problems import print_file_problems
from casescope.errors import IndexBusyError
from casescope.jobs.launcher import PoolKeeper
from casescope.model.enums import FileStatus
from casescope.model.outage import ride_out
from casescope.services.progress import FileSet, read_progress
from casescope.services.progress import Progress as FileProgress
from casescope.services.status import collect_status
from casescope.store.owner import open_index

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

logger = logging.getLogger(__name__)

#: How often the progress is read: at first often, so that a small ingest's end is seen
#: within a few tens of milliseconds, then less as the ingest goes on (each look reads every
#: file row of the ingest), up to once every MAX_POLL_SECONDS.
MIN_POLL_SECONDS = 0.05
MAX_POLL_SECONDS = 0.5
POLL_GROWTH = 0.125  # seconds of wait per second followed


def poll_seconds(followed_for: float) -> float:
    """The wait before the next look at the progress, `followed_for` seconds in."""
    return min(MAX_POLL_SECONDS, max(MIN_POLL_SECONDS, followed_for * POLL_GROWTH))


#: Files finished meanwhile wait this long for the owner's next load (a busy ingest then makes
#: few large INSERTs, not many small ones); a large file's load pieces are loaded when ready.
LOAD_INTERVAL_SECONDS = 3.0
POOL_CHECK_SECONDS = 5.0


class _EventRate(TextColumn):
    def __init__(self) -> None:
        super().__init__("")

    def render(self, task):  # type: ignore[no-untyped-def]
        speed = task.finished_speed or task.speed
        unit = "events/s" if task.description.startswith("events") else "files/s"
        return f"{speed:,.0f} {unit}" if speed else ""


def _bars() -> Progress:
    return Progress(
        TextColumn("{task.description:<7}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        _EventRate(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        refresh_per_second=2,  # the figures change once a poll; redrawing costs the owner CPU
    )


def follow(
    ctx: AppContext, files: FileSet, *, workers: int | None = None, keeper: PoolKeeper | None = None
) -> None:
    """Block until every file in `files` is terminal and loaded into the index.

    Starts a worker pool unless `keeper` holds one already or live workers exist, and keeps
    one running (a pool that dies is replaced at once, its jobs released); raises
    `PoolStartError` when the pool keeps dying as it starts.
    """
    keeper = keeper or PoolKeeper(ctx.settings, ctx.db, workers=workers)
    keeper.ensure()
    try:
        owner = open_index(ctx.settings, role="casescope ingest")
        index = owner.__enter__()
    except IndexBusyError as exc:
        console.print(f"[yellow]{exc}[/]: it will load the results", highlight=False)
        owner, index = nullcontext(), None
    try:
        _follow_loop(ctx, files, index, keeper)
        if index is not None:
            _compact(index)
    finally:
        owner.__exit__(None, None, None)
    keeper.stop()


def _compact(index: EventIndex) -> None:
    """Every event is searchable: merge the parts the load left, so that the next searches
    read a few parts, not dozens (docs/decisions.md, "Merges: large parts, vertical, niced,
    one at a time")."""
    started, before = time.monotonic(), index.active_parts()
    note = "Ctrl-C is safe: merging resumes when the index is next opened"
    with console.status(f"compacting the index: {before} parts ({note})") as status:
        left = index.compact(lambda n: status.update(f"compacting the index: {n} parts ({note})"))
    seconds = time.monotonic() - started
    logger.info("compacted the index: %d parts -> %d in %.2f s", before, left, seconds)
    if left < before:
        console.print(f"index compacted: {before} parts -> {left} in {seconds:.1f} s")


def load_due(progress: FileProgress, since_last_load: float) -> bool:
    """Whether the owner should load now: something awaits it, and the files are all done,
    a large file's load piece is ready, or LOAD_INTERVAL_SECONDS have passed."""
    if not progress.awaiting_load:
        return False
    return bool(
        progress.finished or progress.pieces_ready or since_last_load > LOAD_INTERVAL_SECONDS
    )


@dataclass
class _Follow:
    """What one `_follow_loop` keeps between its rounds."""

    ctx: AppContext
    files: FileSet
    index: EventIndex | None
    keeper: PoolKeeper
    bars: Progress
    file_task: TaskID
    event_task: TaskID
    last_load: float
    last_pool_check: float
    started: float

    def round(self) -> bool:
        """Show the progress, load what is due, watch the pool; True once all is done.
        One transaction or load at a time, each safe to run again after an outage (a load
        deletes the rows its files already have in the index before it inserts)."""
        # the loader (Arrow, Parquet) comes with following an ingest, not with `status`,
        # which imports this module for its reports
        from casescope.store.loader import load_pending

        ctx, index = self.ctx, self.index
        progress = read_progress(ctx.db, self.files)
        self.bars.update(self.file_task, total=progress.total, completed=progress.done)
        self.bars.update(
            self.event_task, total=progress.events_estimated, completed=progress.events_done
        )
        now = time.monotonic()
        if index is not None and load_due(progress, now - self.last_load):
            load_pending(ctx.db, index, ctx.settings)
            self.last_load = now
            return False
        if progress.finished and (index is None or progress.awaiting_load == 0):
            return True
        self.keeper.watch(work_left=True)  # our pool died: its jobs are released at once
        if now - self.last_pool_check > POOL_CHECK_SECONDS:
            self.last_pool_check = now
            self.keeper.ensure()  # no live workers (another pool that served us died)
        time.sleep(poll_seconds(now - self.started))
        return False


def _follow_loop(
    ctx: AppContext, files: FileSet, index: EventIndex | None, keeper: PoolKeeper
) -> None:
    """Follow until done; a metadata DB outage is ridden out (`model.outage`)."""
    now = time.monotonic()
    with _bars() as bars:
        file_task = bars.add_task("files", total=None)
        event_task = bars.add_task("events", total=None)
        state = _Follow(ctx, files, index, keeper, bars, file_task, event_task, now, now, now)
        while not ride_out(ctx.settings, "following the ingest", state.round):
            pass


def print_outcome(ctx: AppContext, files: FileSet, rejected: int = 0) -> None:
    """How the files of a run ended: counts, then the failed ones and those with warnings."""
    progress = read_progress(ctx.db, files)
    report = collect_status(
        ctx.db,
        case_id=files.case_id,
        index=None,
        stale_after=0,
        files=files,
    )
    refused = f" (and {rejected:,} rejected at intake, above)" if rejected else ""
    cancelled = f"{progress.cancelled:,} cancelled, " if progress.cancelled else ""
    not_evidence = report.files_by_status.get(FileStatus.REJECTED, 0)  # done, not completed
    console.print(
        f"done: {progress.completed - not_evidence:,} completed, {progress.failed:,} failed, "
        f"{cancelled}"
        f"{progress.events_done:,} events; {report.files_with_warnings:,} files with "
        f"warnings{refused}",
        highlight=False,
    )
    print_file_problems(report)

"""`casescope search` and `casescope export`."""

from __future__ import annotations

import shlex
import sys
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from typer._click import Context
from typer._click.exceptions import NoSuchOption, UsageError  # typer vendors click
from typer.core import TyperCommand

from casescope.cli.common import (
    AppContext,
    console,
    friendly_errors,
    loaded_index,
    open_app,
    shown,
)
from casescope.cli.ioc_options import filter_type
from casescope.cli.output import OutputFormat, format_option
from casescope.cli.tables import Listing
from casescope.detect.levels import SigmaLevel
from casescope.errors import CasescopeError
from casescope.model.db import Database
from casescope.services.cases import get_case
from casescope.services.detections import DetectionFilter, detected_events
from casescope.services.event_search import EXPORT_CHUNK_ROWS, export_chunks
from casescope.services.ioc_hits import HitFilter, hit_events
from casescope.services.mark_search import mark_lookup
from casescope.services.search import (
    ExportFormat,
    SearchRequest,
    build_where,
    narrow_events,
    query_limits,
    write_export,
)
from casescope.services.search import (
    search as run_search,
)
from casescope.store.query import QuerySyntaxError, compile_query, no_marks
from casescope.store.summary import summarise


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CasescopeError(f"not an ISO 8601 time: {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


FromOpt = Annotated[str | None, typer.Option("--from", help="Start time (ISO 8601, UTC).")]
ToOpt = Annotated[str | None, typer.Option("--to", help="End time, exclusive (ISO 8601, UTC).")]
CaseOpt = Annotated[str, typer.Option("--case", "-c", help="Case name.")]
DetectedOpt = Annotated[
    bool, typer.Option("--detections", help="Only events with a Sigma detection.")
]
LevelOpt = Annotated[
    SigmaLevel | None,
    typer.Option(
        "--level",
        help="Only events with a detection at this level or above (implies --detections).",
    ),
]
RuleOpt = Annotated[
    str | None,
    typer.Option("--rule", help="Only events detected by this rule id (implies --detections)."),
]
IocOpt = Annotated[bool, typer.Option("--ioc", help="Only events with an IOC hit.")]
IocIdOpt = Annotated[
    list[int] | None,
    typer.Option("--ioc-id", help="Only events hit by this IOC id (repeatable; implies --ioc)."),
]
IocTypeOpt = Annotated[
    str | None,
    typer.Option("--ioc-type", help="Only events hit by an IOC of this type (implies --ioc)."),
]


@dataclass(frozen=True)
class _Only:
    """The options that restrict a search to events with detections or IOC hits."""

    detected: bool = False
    level: SigmaLevel | None = None
    rule: str | None = None
    ioc: bool = False
    ioc_ids: tuple[int, ...] = ()
    ioc_type: str | None = None


def _only_events(db: Database, case_id: int, only: _Only) -> tuple[tuple[int, int], ...] | None:
    """The events the options allow (resolved in the metadata DB); None: no restriction."""
    events = None
    if only.detected or only.level or only.rule:
        events = detected_events(db, DetectionFilter(case_id, only.level, only.rule))
    if only.ioc or only.ioc_ids or only.ioc_type:
        hits = HitFilter(case_id, only.ioc_ids, filter_type(only.ioc_type))
        events = narrow_events(events, hit_events(db, hits))
    return events


def _request(
    ctx: AppContext,
    case: str,
    query: str,
    span: tuple[str | None, str | None],
    only: _Only,
    page: tuple[int, int] = (100, 0),
) -> SearchRequest:
    """The search request for the CLI options (detection and IOC filters resolved in the DB);
    a query with a syntax error or over the limits is refused before the index is opened."""
    limits = query_limits(ctx.settings)
    try:
        compile_query(query, limits=limits, marks=no_marks)
    except QuerySyntaxError as exc:
        raise CasescopeError(f"query: {exc}") from None
    case_id = get_case(ctx.db, case).id
    events = _only_events(ctx.db, case_id, only)
    start, end = (_parse_time(t) for t in span)
    if start is not None and end is not None and start > end:
        raise CasescopeError(f"--from ({span[0]}) is after --to ({span[1]}): nothing can match")
    marks = mark_lookup(ctx.db, case_id)
    return SearchRequest(
        case_id, query, start, end, *page, only_events=events, limits=limits, marks=marks
    )


class QueryCommand(TyperCommand):
    """`search`: a query that starts with `-` (NOT, as in Lucene) reads as an unknown option
    unless it follows `--`; the error says so instead of only "No such option: -E"."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        given = list(args)  # the parser consumes `args`
        try:
            return super().parse_args(ctx, args)
        except NoSuchOption as exc:
            query = next((a for a in given if a.startswith(exc.option_name)), None)
            if query is None or query.startswith("--"):
                raise
            raise UsageError(
                f"{exc.format_message()}. A query that starts with '-' goes last, after "
                f"'--': casescope search --case CASE [OPTIONS] -- {shlex.quote(query)}",
                ctx,
            ) from exc


@friendly_errors
def search(
    query: Annotated[str, typer.Argument(help="Query, e.g. 'EventID:4624 AND \"logon\"'.")],
    case: CaseOpt,
    start: FromOpt = None,
    end: ToOpt = None,
    limit: Annotated[int, typer.Option(help="Rows to show.", min=1)] = 50,
    offset: Annotated[int, typer.Option(help="Rows to skip.", min=0)] = 0,
    fmt: Annotated[OutputFormat, format_option()] = OutputFormat.TABLE,
    detected: DetectedOpt = False,
    level: LevelOpt = None,
    rule: RuleOpt = None,
    ioc: IocOpt = False,
    ioc_ids: IocIdOpt = None,
    ioc_type: IocTypeOpt = None,
) -> None:
    """Search a case's events (query language: docs/query-language.md)."""
    ctx = open_app("search")
    only = _Only(detected, level, rule, ioc, tuple(ioc_ids or ()), ioc_type)
    request = _request(ctx, case, query, (start, end), only, (limit, offset))
    with loaded_index(ctx, role="casescope search") as index:
        try:
            if fmt is OutputFormat.TABLE:
                rows, total = run_search(index, request)
                _render_rows(rows, total, request)
                return
            lines = ExportFormat(fmt.value)
            chunk = min(offset + limit, EXPORT_CHUNK_ROWS)
            chunks = export_chunks(lambda: nullcontext(index), build_where(request), lines, chunk)
            head = _limited(chunks, offset, limit)
            sys.stdout.flush()
            write_export(head, lines, sys.stdout.buffer)
        except QuerySyntaxError as exc:
            raise CasescopeError(f"query: {exc}") from None


search.command_class = QueryCommand  # type: ignore[attr-defined]


def _limited(batches, offset: int, limit: int):  # type: ignore[no-untyped-def]
    skipped = taken = 0
    for batch in batches:
        if skipped + batch.num_rows <= offset:
            skipped += batch.num_rows
            continue
        batch = batch.slice(max(0, offset - skipped))
        skipped = offset
        batch = batch.slice(0, limit - taken)
        taken += batch.num_rows
        yield batch
        if taken >= limit:
            return


def _render_rows(rows: list[dict], total: int, request: SearchRequest) -> None:
    table = Listing("ts", "file", "EventID", "channel", "computer", "summary", expand=True)
    for row in rows:
        fields = row.get("fields") or {}
        line = summarise(row["channel"], row["provider"], row["event_id"], fields)
        table.add_row(  # event data as it is: no markup, no terminal control (`shown`)
            shown(row["ts"]),
            shown(row["file_id"]),
            shown(row["event_id"]),
            shown(row["channel"]),
            shown(row["computer"]),
            shown(line),
        )
    console.print(table)
    span = f"{request.offset + 1:,}-{request.offset + len(rows):,}" if rows else "0"
    console.print(f"{span} of {total:,} matching events", highlight=False)


@friendly_errors
def export(
    case: CaseOpt,
    fmt: Annotated[ExportFormat, typer.Option("--format", help="csv or jsonl.")],
    query: Annotated[str, typer.Option("--query", "-q", help="Only matching events.")] = "",
    start: FromOpt = None,
    end: ToOpt = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default stdout).")
    ] = None,
    detected: DetectedOpt = False,
    level: LevelOpt = None,
    rule: RuleOpt = None,
    ioc: IocOpt = False,
    ioc_ids: IocIdOpt = None,
    ioc_type: IocTypeOpt = None,
) -> None:
    """Stream every (matching) event of a case as CSV or JSONL — no row cap."""
    ctx = open_app("export")
    only = _Only(detected, level, rule, ioc, tuple(ioc_ids or ()), ioc_type)
    request = _request(ctx, case, query, (start, end), only)
    with ExitStack() as stack:
        out = stack.enter_context(_open_output(output)) if output else sys.stdout.buffer
        index = stack.enter_context(loaded_index(ctx, role="casescope export"))
        try:
            # chunk by chunk, as the web app does: one stream in time order over a dozen
            # parts (what `ingest` leaves of a large case) outgrew the index's budget
            chunks = export_chunks(lambda: nullcontext(index), build_where(request), fmt)
            count = write_export(chunks, fmt, out)
        except QuerySyntaxError as exc:
            raise CasescopeError(f"query: {exc}") from None
    if output:
        console.print(f"exported {count:,} events to {output}", highlight=False)


def _open_output(path: Path) -> BinaryIO:
    """The export's file, opened before the index is (a mistyped folder: one clear line)."""
    try:
        return path.open("wb")
    except OSError as exc:
        raise CasescopeError(f"cannot write the export to {path}: {exc.strerror}") from None

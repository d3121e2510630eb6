"""`casescope ioc ...` (add, import, list, enable/disable/remove, rehunt) and `casescope hits`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from casescope.cli.common import AppContext, console, err_console, friendly_errors, open_app, shown
from casescope.cli.follow import follow
from casescope.cli.ioc_options import checked_type, filter_type
from casescope.cli.output import OutputFormat, format_option, write_rows
from casescope.cli.tables import Listing
from casescope.errors import CasescopeError, IndexBusyError
from casescope.jobs.launcher import ensure_workers
from casescope.services.cases import get_case
from casescope.services.ioc_hits import HIT_COLUMNS, HitFilter, hit_summary, iter_hits
from casescope.services.iocs import (
    ImportFormat,
    IocChange,
    import_iocs,
    list_iocs,
    rehunt,
    remove_iocs,
    set_enabled,
)
from casescope.services.iocs import add_iocs as add_iocs_service
from casescope.store.owner import open_index
from casescope.units import counted

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

app = typer.Typer(help="Manage a case's IOCs (indicators of compromise).", no_args_is_help=True)

#: Largest IOC file `ioc import` reads.
MAX_IMPORT_BYTES = 64 * 1024 * 1024


#: Columns of `ioc list --format csv` (header even when the case has no IOCs).
IOC_COLUMNS = ("id", "type", "value", "original", "note", "source", "enabled", "created_at")

CaseOpt = Annotated[str, typer.Option("--case", "-c", help="Case name.")]
TypeOpt = Annotated[
    str | None,
    typer.Option("--type", "-t", help="IOC type (ip, domain, sha256, ...; default: inferred)."),
]
NoWaitOpt = Annotated[
    bool, typer.Option("--no-wait", help="Queue the re-hunt, start workers and return.")
]
TypeFilterOpt = Annotated[
    str | None, typer.Option("--type", "-t", help="Only IOCs of this type (ip, domain, ...).")
]
IdsArg = Annotated[list[int], typer.Argument(help="IOC ids (see `casescope ioc list`).")]
FormatOpt = Annotated[OutputFormat, format_option()]


@contextmanager
def index_if_free(ctx: AppContext, role: str) -> Iterator[EventIndex | None]:
    """The event index if no other process owns it (new IOCs are then hunted in it), else
    None (completed files are re-hunted from their segments by workers)."""
    stack = ExitStack()
    try:
        index = stack.enter_context(open_index(ctx.settings, role=role))
    except IndexBusyError as exc:
        err_console.print(shown(f"{exc}: re-hunting from segments instead"))
        index = None
    with stack:
        yield index


def _report(ctx: AppContext, change: IocChange, no_wait: bool) -> None:
    """Say what changed; follow the re-hunt it queued unless --no-wait."""
    if change.index_hits is not None:
        console.print(
            f"hunted the new IOCs in the index: {change.index_hits:,} hits", highlight=False
        )
    if change.queued:
        console.print(f"queued {change.queued:,} files for IOC re-hunt", highlight=False)
        if no_wait:
            ensure_workers(ctx.settings, ctx.db, detach=True)
            console.print("follow with `casescope status`", highlight=False)
        elif change.file_set is not None:
            follow(ctx, change.file_set)


@app.command("add")
@friendly_errors
def add(
    case: CaseOpt,
    values: Annotated[list[str], typer.Argument(help="Indicator values (refanged for you).")],
    ioc_type: TypeOpt = None,
    note: Annotated[str, typer.Option(help="A note kept with each IOC.")] = "",
    no_wait: NoWaitOpt = False,
) -> None:
    """Add IOCs to a case and re-hunt its completed files (all or none: a bad value stops)."""
    ctx = open_app("ioc add")
    case_id = get_case(ctx.db, case).id
    with index_if_free(ctx, "casescope ioc add") as index:
        change = add_iocs_service(
            ctx.db,
            ctx.settings,
            case_id,
            values,
            checked_type(ioc_type),
            note=note,
            source="cli",
            index=index,
        )
    console.print(
        f"added {len(change.added):,} IOCs ({change.existing:,} already in the case, "
        f"{change.duplicates:,} repeated)",
        highlight=False,
    )
    _report(ctx, change, no_wait)


@app.command("import")
@friendly_errors
def import_(
    case: CaseOpt,
    path: Annotated[Path, typer.Argument(help="CSV with a `type,value[,note]` header, or a list.")],
    ioc_type: TypeOpt = None,
    fmt: Annotated[
        ImportFormat, typer.Option("--format", help="auto: CSV if the file has a header.")
    ] = ImportFormat.AUTO,
    no_wait: NoWaitOpt = False,
) -> None:
    """Import IOCs from a file; bad lines are reported with their line numbers and skipped."""
    ctx = open_app("ioc import")
    case_id = get_case(ctx.db, case).id
    text = _read_text(path)
    kind = checked_type(ioc_type)
    with index_if_free(ctx, "casescope ioc import") as index:
        change = import_iocs(
            ctx.db,
            ctx.settings,
            case_id,
            text,
            ioc_type=kind,
            fmt=fmt,
            source=path.name,
            index=index,
        )
    for error in change.errors:
        err_console.print(shown(f"line {error.line}: {error.message}"))
    console.print(
        f"imported {counted(len(change.added), 'IOC')} ({change.existing:,} already in the case, "
        f"{change.duplicates:,} repeated, {counted(len(change.errors), 'bad line')})",
        highlight=False,
    )
    _report(ctx, change, no_wait)


def _read_text(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_IMPORT_BYTES:
            raise CasescopeError(f"{path}: larger than {MAX_IMPORT_BYTES // 2**20} MiB")
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CasescopeError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise CasescopeError(f"cannot read {path}: {exc.strerror or exc}") from None


@app.command("list")
@friendly_errors
def list_(
    case: CaseOpt,
    ioc_type: TypeFilterOpt = None,
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """List a case's IOCs (id, type, value, on/off, source, note)."""
    ctx = open_app("ioc list")
    case_id = get_case(ctx.db, case).id
    records = list_iocs(ctx.db, case_id, ioc_type=filter_type(ioc_type))
    rows = (
        {k: v for k, v in asdict(r).items() if k != "case_id"} | {"type": r.type.value}
        for r in records
    )
    if fmt is OutputFormat.TABLE:
        table = Listing("id", "type", "value", "on", "source", "note", title="IOCs")
        for r in records:
            on = "yes" if r.enabled else "no"
            table.add_row(
                str(r.id), r.type.value, shown(r.original), on, shown(r.source), shown(r.note)
            )
        console.print(table)
        return
    write_rows(rows, fmt, IOC_COLUMNS)


def _toggle(case: str, ids: Sequence[int], enabled: bool, no_wait: bool) -> None:
    ctx = open_app("ioc enable" if enabled else "ioc disable")
    case_id = get_case(ctx.db, case).id
    with index_if_free(ctx, "casescope ioc enable") if enabled else nullcontext() as index:
        change = set_enabled(ctx.db, ctx.settings, case_id, ids, enabled, index=index)
    state = "enabled" if enabled else "disabled (their hits deleted)"
    console.print(
        f"{len(change.changed):,} IOCs {state} ({change.existing:,} already were)",
        highlight=False,
    )
    _report(ctx, change, no_wait)


@app.command("enable")
@friendly_errors
def enable(case: CaseOpt, ids: IdsArg, no_wait: NoWaitOpt = False) -> None:
    """Enable IOCs and re-hunt the case's completed files."""
    _toggle(case, ids, True, no_wait)


@app.command("disable")
@friendly_errors
def disable(case: CaseOpt, ids: IdsArg) -> None:
    """Disable IOCs: they are kept but not hunted, and their hits are deleted now."""
    _toggle(case, ids, False, True)


@app.command("remove")
@friendly_errors
def remove(case: CaseOpt, ids: IdsArg) -> None:
    """Delete IOCs and their hits."""
    ctx = open_app("ioc remove")
    hits = remove_iocs(ctx.db, get_case(ctx.db, case).id, ids)
    console.print(f"removed {len(set(ids)):,} IOCs and {hits:,} hits", highlight=False)


@app.command("rehunt")
@friendly_errors
def rehunt_(case: CaseOpt, no_wait: NoWaitOpt = False) -> None:
    """Hunt the case's enabled IOCs again in all its completed files (from their segments)."""
    ctx = open_app("ioc rehunt")
    change = rehunt(ctx.db, ctx.settings, get_case(ctx.db, case).id)
    if not change.queued:
        console.print("no completed files to re-hunt", highlight=False)
    _report(ctx, change, no_wait)


@friendly_errors
def hits(
    case: CaseOpt,
    ioc_ids: Annotated[
        list[int] | None, typer.Option("--ioc", help="Only this IOC id (repeatable).")
    ] = None,
    ioc_type: TypeFilterOpt = None,
    file_ids: Annotated[
        list[int] | None, typer.Option("--file", help="Only this file id (repeatable).")
    ] = None,
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """IOC hits of a case: a summary by IOC (table) or every hit (jsonl/csv)."""
    ctx = open_app("hits")
    filters = HitFilter(
        get_case(ctx.db, case).id,
        tuple(ioc_ids or ()),
        filter_type(ioc_type),
        tuple(file_ids or ()),
    )
    if fmt is OutputFormat.TABLE:
        table = Listing("id", "type", "value", "on", "hits", "events", "files", title="IOC hits")
        for s in hit_summary(ctx.db, filters):
            on = "yes" if s.enabled else "no"
            counts = (f"{s.hits:,}", f"{s.events:,}", f"{s.files:,}")
            table.add_row(str(s.ioc_id), s.type.value, shown(s.value), on, *counts)
        console.print(table)
        return
    write_rows(iter_hits(ctx.db, filters), fmt, HIT_COLUMNS)

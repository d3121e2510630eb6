"""`casescope mark ...` (tag/untag, star/unstar, hide/unhide events or every match of a
query), `casescope tags` (a case's tags with counts) and `casescope note ...` (notes on
events). The same services as the web app; changes are audited with the actor `cli`."""

from __future__ import annotations

from typing import Annotated

import typer

from casescope.cli.common import AppContext, console, friendly_errors, loaded_index, open_app, shown
from casescope.cli.output import OutputFormat, format_option, write_rows
from casescope.cli.tables import Listing
from casescope.errors import CasescopeError
from casescope.model.enums import AuditAction
from casescope.model.users import EventMark
from casescope.services import bulk_marks as bm
from casescope.services import notes as ns
from casescope.services.cases import get_case
from casescope.services.mark_search import mark_lookup
from casescope.services.marks import tag_counts
from casescope.services.search import SearchRequest, build_where, query_limits
from casescope.store.query import QuerySyntaxError
from casescope.store.where import EventKey

app = typer.Typer(
    help="Tag, star or hide events (or take the mark off), by id or by query.",
    no_args_is_help=True,
)
note_app = typer.Typer(help="Notes on events: add, list, edit, delete.", no_args_is_help=True)

#: Who the audit log and the marks name for a change made from the command line.
ACTOR = "cli"

CaseOpt = Annotated[str, typer.Option("--case", "-c", help="Case name.")]
EventsOpt = Annotated[
    list[str] | None,
    typer.Option("--event", "-e", help="An event as FILE_ID:SEQ (repeatable)."),
]
QueryOpt = Annotated[
    str | None,
    typer.Option("--query", "-q", help="Every match of this query (docs/query-language.md)."),
]
EventOpt = Annotated[str, typer.Option("--event", "-e", help="The event, as FILE_ID:SEQ.")]
FormatOpt = Annotated[OutputFormat, format_option()]


def parse_event(text: str) -> EventKey:
    """`FILE_ID:SEQ` as an event key (a clear error otherwise)."""
    file_text, _, seq_text = text.strip().partition(":")
    if not (file_text.isascii() and file_text.isdigit() and seq_text.isascii()):
        raise CasescopeError(f"an event is FILE_ID:SEQ, not {text!r}")
    if not seq_text.isdigit() or int(file_text) < 1:
        raise CasescopeError(f"an event is FILE_ID:SEQ, not {text!r}")
    return int(file_text), int(seq_text)


def _query_events(ctx: AppContext, case_id: int, query: str) -> list[EventKey]:
    request = SearchRequest(
        case_id, query, limits=query_limits(ctx.settings), marks=mark_lookup(ctx.db, case_id)
    )
    try:
        where = build_where(request)
    except QuerySyntaxError as exc:
        raise CasescopeError(f"query: {exc}") from None
    with loaded_index(ctx, role="casescope mark") as index:
        return bm.search_events(index, where, ctx.settings.bulk_mark_max_events)


def _change(case: str, change: bm.MarkChange, events: list[str] | None, query: str | None) -> None:
    if (events is None) == (query is None):
        raise CasescopeError("give --event (one or more) or --query")
    ctx = open_app("mark")
    case_id = get_case(ctx.db, case).id
    extra: dict[str, object] = {}
    if query is not None:
        keys = _query_events(ctx, case_id, query)
        extra["query"] = query[:500]
    else:
        keys = [parse_event(e) for e in events or []]
    result = bm.apply_change(ctx.db, case_id, keys, change, ACTOR)
    bm.audit_change(ctx.db, ACTOR, case_id, change, keys, {"changed": result.changed, **extra})
    verb = "marked" if change.add else "unmarked"
    console.print(f"{verb} {result.changed:,} of {result.events:,} events", highlight=False)


@app.command("tag")
@friendly_errors
def tag(case: CaseOpt, label: str, event: EventsOpt = None, query: QueryOpt = None) -> None:
    """Tag events with LABEL."""
    _change(case, bm.MarkChange(EventMark.TAG, label), event, query)


@app.command("untag")
@friendly_errors
def untag(case: CaseOpt, label: str, event: EventsOpt = None, query: QueryOpt = None) -> None:
    """Take the tag LABEL off events."""
    _change(case, bm.MarkChange(EventMark.TAG, label, add=False), event, query)


def _simple(mark: EventMark, add: bool, doc: str) -> None:
    @friendly_errors
    def command(case: CaseOpt, event: EventsOpt = None, query: QueryOpt = None) -> None:
        _change(case, bm.MarkChange(mark, "", add), event, query)

    command.__doc__ = doc
    name = {EventMark.STAR: "star", EventMark.HIDDEN: "hide"}[mark]
    app.command(name if add else f"un{name}")(command)


_simple(EventMark.STAR, True, "Star events.")
_simple(EventMark.STAR, False, "Unstar events.")
_simple(EventMark.HIDDEN, True, "Hide events (left out of web searches unless asked for).")
_simple(EventMark.HIDDEN, False, "Unhide events.")


@friendly_errors
def tags(case: CaseOpt, fmt: FormatOpt = OutputFormat.TABLE) -> None:
    """A case's tags with their number of events, most used first."""
    ctx = open_app("tags")
    counts = tag_counts(ctx.db, get_case(ctx.db, case).id)
    if fmt is not OutputFormat.TABLE:
        write_rows(counts, fmt, ("label", "events", "last_at"))
        return
    table = Listing("tag", "events", "last set (UTC)", title="Tags")
    for t in counts:
        table.add_row(shown(t.label), f"{t.events:,}", t.last_at.strftime("%Y-%m-%d %H:%M:%S"))
    console.print(table)


@note_app.command("add")
@friendly_errors
def note_add(case: CaseOpt, event: EventOpt, text: str) -> None:
    """Write a note on an event."""
    ctx = open_app("note")
    case_id = get_case(ctx.db, case).id
    note = ns.add_note(ctx.db, case_id, parse_event(event), ACTOR, text)
    ns.audit_note(ctx.db, ACTOR, AuditAction.NOTE_ADD, case_id, note)
    console.print(f"note {note.id} added", highlight=False)


@note_app.command("list")
@friendly_errors
def note_list(case: CaseOpt, event: EventOpt, fmt: FormatOpt = OutputFormat.TABLE) -> None:
    """The notes of an event, oldest first."""
    ctx = open_app("note")
    notes = ns.event_notes(ctx.db, get_case(ctx.db, case).id, parse_event(event))
    columns = ("id", "file_id", "seq", "author", "text", "created_at", "updated_at")
    if fmt is not OutputFormat.TABLE:
        write_rows(notes, fmt, columns)
        return
    table = Listing("id", "author", "written (UTC)", "text", title="Notes")
    for n in notes:
        written = n.created_at.strftime("%Y-%m-%d %H:%M:%S") + (" (edited)" if n.updated_at else "")
        table.add_row(str(n.id), shown(n.author), written, shown(n.text))
    console.print(table)


@note_app.command("edit")
@friendly_errors
def note_edit(case: CaseOpt, note_id: int, text: str) -> None:
    """Replace a note's text (the command line acts as an admin)."""
    ctx = open_app("note")
    case_id = get_case(ctx.db, case).id
    note = ns.edit_note(ctx.db, case_id, note_id, ns.Editor(ACTOR, is_admin=True), text)
    ns.audit_note(ctx.db, ACTOR, AuditAction.NOTE_EDIT, case_id, note)
    console.print(f"note {note.id} edited", highlight=False)


@note_app.command("delete")
@friendly_errors
def note_delete(case: CaseOpt, note_id: int) -> None:
    """Delete a note (the command line acts as an admin)."""
    ctx = open_app("note")
    case_id = get_case(ctx.db, case).id
    note = ns.delete_note(ctx.db, case_id, note_id, ns.Editor(ACTOR, is_admin=True))
    ns.audit_note(ctx.db, ACTOR, AuditAction.NOTE_DELETE, case_id, note)
    console.print(f"note {note.id} deleted", highlight=False)

"""`casescope detections`: the rules that fired in a case, every hit, the detection timeline
(every hit in time order with its event's summary) and an ATT&CK Navigator layer."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.text import Text

from casescope.cli.common import (
    AppContext,
    console,
    friendly_errors,
    loaded_index,
    open_app,
    shown,
)
from casescope.cli.output import OutputFormat, format_option, write_rows
from casescope.cli.tables import Listing
from casescope.detect.levels import SigmaLevel, SigmaStatus
from casescope.errors import CasescopeError
from casescope.services.attack_matrix import case_layer
from casescope.services.cases import get_case
from casescope.services.detections import (
    DetectionFilter,
    Shown,
    first_few,
    iter_detections,
    rule_hits,
)

if TYPE_CHECKING:
    from casescope.services.detection_timeline import TimelineRow

#: The timeline's columns (CSV header when there are no hits).
TIMELINE_COLUMNS = (
    "ts",
    "computer",
    "level",
    "rule_title",
    "summary",
    "rule_uid",
    "tactics",
    "techniques",
    "channel",
    "event_id",
    "record_id",
    "file_id",
    "seq",
)


def _record(row: TimelineRow) -> dict[str, object]:
    values = {name: getattr(row, name) for name in TIMELINE_COLUMNS}
    values["tactics"] = " ".join(row.tactics)
    values["techniques"] = " ".join(row.techniques)
    return values


def _time(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if hasattr(value, "strftime") else ""


def _print_timeline(rows: Iterable[TimelineRow]) -> None:
    """One line per hit, as it comes (a table of millions of rows is never held)."""
    console.print("time (UTC)           level          computer             rule ¦ summary")
    for row in rows:
        line = Text(f"{_time(row.ts):<20} ") + shown(f"{row.level:<14} "[:15])
        line += shown(f"{row.computer:<20}"[:40])
        line += Text(" ") + shown(row.rule_title) + Text(" ¦ ") + shown(row.summary)
        console.print(line, highlight=False, soft_wrap=True)


def _print_rules(ctx: AppContext, filters: DetectionFilter) -> None:
    table = Listing(
        *("level", "rule set", "rule", "hits", "hidden", "hosts"),
        *("first seen (UTC)", "last seen (UTC)", "ATT&CK"),
        title="detections by rule",
    )
    for item in rule_hits(ctx.db, filters):
        hosts, more = first_few(item.hosts)
        table.add_row(
            shown(item.rule.level),
            shown(item.rule.source),
            shown(item.rule.title),
            f"{item.hits:,}",
            f"{item.excluded:,}",
            shown(", ".join(hosts) + (f" +{more}" if more else "")),
            _time(item.first_seen),
            _time(item.last_seen),
            " ".join(item.rule.attack.techniques),
        )
    console.print(table)


def _write_layer(layer: dict, output: Path | None) -> None:
    data = orjson.dumps(layer, option=orjson.OPT_INDENT_2) + b"\n"
    if output is None or str(output) == "-":
        sys.stdout.buffer.write(data)
        return
    try:
        output.write_bytes(data)
    except OSError as exc:
        raise CasescopeError(f"cannot write {output}: {exc.strerror}") from None
    console.print(f"ATT&CK Navigator layer written to {output}", highlight=False)


LevelOpt = Annotated[SigmaLevel | None, typer.Option(help="Minimum level.")]
StatusOpt = Annotated[
    list[SigmaStatus] | None, typer.Option("--status", help="Rule status (repeatable).")
]


@friendly_errors
def detections(
    case: Annotated[str, typer.Option("--case", "-c", help="Case name.")],
    level: LevelOpt = None,
    rule: Annotated[str | None, typer.Option(help="Only this Sigma rule id.")] = None,
    status: StatusOpt = None,
    host: Annotated[str | None, typer.Option(help="Only hits on this computer.")] = None,
    tactic: Annotated[str | None, typer.Option(help="ATT&CK tactic (execution, TA0002).")] = None,
    technique: Annotated[
        str | None, typer.Option(help="ATT&CK technique (T1059 takes T1059.001).")
    ] = None,
    match: Annotated[
        str | None, typer.Option("--match", help="Text in the rule's title or description.")
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="Only this rule set (its `rules import --name`).")
    ] = None,
    hits: Annotated[
        Shown,
        typer.Option("--hits", help="Hits shown, hidden by the case's exclusions, or all."),
    ] = Shown.VISIBLE,
    timeline: Annotated[
        bool, typer.Option("--timeline", help="Every hit in time order with its summary.")
    ] = False,
    navigator: Annotated[
        bool, typer.Option("--navigator", help="An ATT&CK Navigator layer (JSON) of the hits.")
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File for --navigator (default: stdout).")
    ] = None,
    fmt: Annotated[OutputFormat, format_option()] = OutputFormat.TABLE,
) -> None:
    """Sigma detections of a case: by rule (table) or every hit (jsonl/csv).

    --timeline for the hits in time order with their events' summaries; --navigator for an
    ATT&CK Navigator layer."""
    if timeline and navigator:
        raise CasescopeError("choose --timeline or --navigator, not both")
    ctx = open_app("detections")
    filters = DetectionFilter(
        get_case(ctx.db, case).id,
        level,
        rule,
        statuses=tuple(status or ()),
        host=host,
        tactic=tactic,
        technique=technique,
        text=match or "",
        source=source,
        shown=hits,
    )
    if navigator:
        _write_layer(case_layer(ctx.db, filters), output)
    elif timeline:
        _timeline(ctx, filters, fmt)
    elif fmt is OutputFormat.TABLE:
        _print_rules(ctx, filters)
    else:
        write_rows(iter_detections(ctx.db, filters), fmt)


def _timeline(ctx: AppContext, filters: DetectionFilter, fmt: OutputFormat) -> None:
    """The timeline, streamed: hits are read and their events fetched a chunk at a time."""
    # with the index's event lookups (Arrow): imported when the timeline is asked for, so
    # that the table by rule reads the metadata DB alone
    from casescope.services.detection_timeline import fill_hosts, iter_timeline

    with loaded_index(ctx, role="casescope detections") as index:
        use = lambda: nullcontext(index)  # noqa: E731 - the index stays ours throughout
        fill_hosts(ctx.db, use, filters.case_id)
        rows = iter_timeline(ctx.db, use, filters)
        if fmt is OutputFormat.TABLE:
            _print_timeline(rows)
        else:
            write_rows((_record(r) for r in rows), fmt, TIMELINE_COLUMNS)

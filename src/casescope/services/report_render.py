"""A report (`services/report.py`) written as Markdown, self-contained HTML, or CSV.

Everything in a report came from evidence or from users, so every format keeps it inert:
- HTML: autoescaped Jinja2, no script, no external asset (styles inline), and a
  Content-Security-Policy of `default-src 'none'` in the page itself, so even a file opened
  from disk loads nothing; analyst text is shown as written (line breaks kept), not rendered.
- Markdown: event values have every ASCII punctuation character backslash-escaped (CommonMark
  reads each as itself) and line breaks flattened; analyst text keeps its Markdown but not
  raw HTML, links or images (`<`, `>`, `&`, `[`, `]` escaped).
- CSV: cells that a spreadsheet would run as a formula get a leading quote.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from casescope.model.story import StoryItemKind
from casescope.services.report import Report, ReportEvent, ReportFormat, ReportItem
from casescope.store.cells import neutralise_cell

TEMPLATES = Path(__file__).parent / "templates"
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_TEXT_SPECIAL = re.compile(r"([<>&\[\]\\])")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029]+")
CSV_COLUMNS = (
    "position",
    "kind",
    "time_utc",
    "event_id",
    "channel",
    "provider",
    "computer",
    "user_name",
    "record_id",
    "summary",
    "detections",
    "tags",
    "starred",
    "file",
    "file_id",
    "seq",
    "text",
    "by",
)

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def utc_text(moment: datetime | None) -> str:
    """A time as `YYYY-MM-DD HH:MM:SS.ffffff UTC` ("" for none)."""
    if moment is None:
        return ""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def md_value(value: object) -> str:
    """Evidence text as Markdown that reads back as exactly itself, on one line."""
    text = _LINE_BREAKS.sub(" ", "" if value is None else str(value))
    return _PUNCTUATION.sub(r"\\\1", text)


def md_text(text: str) -> str:
    """Analyst text as Markdown without raw HTML, links or images."""
    return _TEXT_SPECIAL.sub(r"\\\1", text)


def _md_event(event: ReportEvent) -> list[str]:
    if not event.found:
        where = md_value(f"{event.file_name} ({event.file_id}:{event.seq})")
        return [f"- **Event not in the index**: {where}", ""]
    head = f"EventID {event.event_id}" if event.event_id is not None else "Event"
    lines = [f"### {md_value(utc_text(event.ts))} · {md_value(head)} · {md_value(event.computer)}"]
    lines += ["", md_value(event.summary) or "_no summary_", ""]
    facts = [
        ("Channel", event.channel),
        ("Provider", event.provider),
        ("User", event.user_name),
        ("Record", event.record_id),
        ("Detections", "; ".join(event.detections)),
        ("Tags", ", ".join(event.tags) + (" (starred)" if event.starred else "")),
        ("Source", f"{event.file_name} (file {event.file_id}, event {event.seq})"),
    ]
    lines += [f"- **{name}**: {md_value(v)}" for name, v in facts if v not in ("", None)]
    return [*lines, ""]


def to_markdown(report: Report) -> str:
    lines = [f"# Case report: {md_value(report.case_name)}", ""]
    if report.description:
        lines += [md_value(report.description), ""]
    lines += [
        f"Generated {md_value(utc_text(report.generated_at))} by {md_value(report.generated_by)}"
        f" · {report.event_count} events",
        "",
        "---",
        "",
    ]
    for item in report.items:
        if item.kind is StoryItemKind.TEXT:
            lines += [md_text(item.text), ""]
        elif item.event is not None:
            lines += _md_event(item.event)
    if not report.items:
        lines += ["_The story is empty._", ""]
    return "\n".join(lines)


def to_html(report: Report) -> str:
    return _env.get_template("report.html").render(report=report, when=utc_text, Kind=StoryItemKind)


def _csv_row(item: ReportItem) -> list[object]:
    event = item.event
    base: list[object] = [item.position, item.kind.value]
    if event is None:
        return [*base, *[""] * 14, item.text, item.by]
    return [
        *base,
        utc_text(event.ts),
        "" if event.event_id is None else event.event_id,
        event.channel,
        event.provider,
        event.computer,
        event.user_name,
        "" if event.record_id is None else event.record_id,
        event.summary if event.found else "(not in the index)",
        "; ".join(event.detections),
        ", ".join(event.tags),
        "yes" if event.starred else "",
        event.file_name,
        event.file_id,
        event.seq,
        "",
        item.by,
    ]


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for item in report.items:
        writer.writerow([neutralise_cell(v) if isinstance(v, str) else v for v in _csv_row(item)])
    return out.getvalue()


RENDERERS = {
    ReportFormat.MARKDOWN: to_markdown,
    ReportFormat.HTML: to_html,
    ReportFormat.CSV: to_csv,
}


def render_report(report: Report, fmt: ReportFormat) -> str:
    return RENDERERS[fmt](report)


def report_filename(report: Report, fmt: ReportFormat) -> str:
    """A download name from the case name, with only safe characters."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", report.case_name).strip("-.") or "case"
    return f"report-{stem[:60]}.{fmt.value}"

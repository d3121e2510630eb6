"""`casescope report`: a case's story as a report (Markdown, HTML or CSV)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from casescope.cli.common import console, friendly_errors, loaded_index, open_app
from casescope.errors import CasescopeError
from casescope.services.cases import get_case
from casescope.services.report import ReportFormat, build_report, record_export
from casescope.services.report_render import render_report


@friendly_errors
def report(
    case: Annotated[str, typer.Option("--case", "-c", help="Case name.")],
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="md, html (self-contained) or csv.")
    ] = ReportFormat.MARKDOWN,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default stdout).")
    ] = None,
) -> None:
    """Write the case story (events and text, in order) as a report; audited."""
    ctx = open_app("report")
    case_id = get_case(ctx.db, case).id
    if output is not None and not output.parent.is_dir():
        raise CasescopeError(f"no folder {output.parent} to write the report in")
    with loaded_index(ctx, role="casescope report") as index:
        built = build_report(ctx.db, index, case_id, "cli")
    text = render_report(built, fmt)
    record_export(ctx.db, case_id, "cli", fmt, len(built.items))
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CasescopeError(f"cannot write {output}: {exc.strerror}") from None
    console.print(f"wrote a report of {len(built.items):,} items to {output}", highlight=False)

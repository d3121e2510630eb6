"""The failed files and the files with warnings of a status report, as tables: printed by
`casescope status` and at the end of an ingest (`cli/follow.py`). A module of its own so that
`status` does not import what following an ingest needs (the pool launcher, psutil)."""

from __future__ import annotations

from casescope.cli.common import console, shown
from casescope.cli.tables import Listing
from casescope.model.enums import FileStatus
from casescope.services.status import StatusReport


def _shown_of(what: str, shown_rows: list, total: int) -> str:
    return what if len(shown_rows) >= total else f"{what} (first {len(shown_rows):,} of {total:,})"


def _first_lines(text: str, most: int = 3) -> str:
    lines = text.splitlines()
    more = f"\n(+{len(lines) - most} more lines)" if len(lines) > most else ""
    return "\n".join(lines[:most]) + more


def print_file_problems(report: StatusReport) -> None:
    """The failed files with why, and the files that kept what could be read, with what not."""
    failed = report.files_by_status.get(FileStatus.FAILED, 0)
    if report.failures:
        table = Listing(
            "file", "path", "error", title=_shown_of("failed files", report.failures, failed)
        )
        for f in report.failures:
            table.add_row(str(f.file_id), shown(f.path), shown(f.error))
        console.print(table)
    if report.warnings:
        title = _shown_of("files with warnings", report.warnings, report.files_with_warnings)
        table = Listing(
            "file", "status", "path", "warnings (events that could be read are kept)", title=title
        )
        for w in report.warnings:
            table.add_row(str(w.file_id), w.status, shown(w.path), shown(_first_lines(w.warnings)))
        console.print(table)

"""`casescope case export|import`: one case as a verified zip bundle (docs/bundles.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.filesize import decimal
from rich.text import Text

from casescope.cli.common import console, err_console, friendly_errors, open_app, shown


@friendly_errors
def export(
    name: Annotated[str, typer.Argument(help="The case's name.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The bundle to write (a zip).")],
) -> None:
    """Write one case as a self-contained zip bundle, with a manifest.

    The bundle holds its evidence, segments, metadata (grants with user names but no
    passwords, IOCs, saved searches, the rules its detections name) and findings; the
    manifest gives every member's size and sha256."""
    # the migration code brings Arrow and the index: not for `case list` and the rest
    from casescope.migrate.bundle import export_case
    from casescope.migrate.runner import Progress

    ctx = open_app("case export")
    ctx.db.dispose()
    report = export_case(ctx.settings, name, output, Progress())
    console.print(
        Text("exported case ")
        + shown(name)
        + Text(f": {len(report.manifest.members)} members, {decimal(report.bytes)} to ")
        + shown(report.output)
    )


@friendly_errors
def import_(
    bundle: Annotated[Path, typer.Argument(help="A bundle written by `casescope case export`.")],
    as_: Annotated[
        str | None,
        typer.Option("--as", help="Bring the case in under this name (its own is taken here)."),
    ] = None,
) -> None:
    """Bring a case bundle in, checked against its manifest before anything is registered.

    Then the case is copied in under new ids and its events loaded from its segments. Users
    it names that are missing here are created disabled, without a password; its rules come
    in disabled (docs/bundles.md). Run it again after an interruption to finish."""
    # following the re-parse brings the pool launcher: not for `case list` and the rest
    from casescope.cli.follow import follow, print_outcome
    from casescope.migrate.bundle import import_bundle
    from casescope.migrate.bundle_format import BundleError

    ctx = open_app("case import")
    report = import_bundle(ctx.settings, bundle, as_)
    for check in report.verify.checks:
        if not check.ok:
            line = f"{check.what} ({check.unit}): bundle {check.source}, here {check.target}"
            err_console.print(Text("differs: ", style="bold red") + shown(line))
    if not report.verify.ok:
        raise BundleError("the imported case differs from the bundle (see above)")
    console.print(
        Text("imported case ")
        + shown(report.name)
        + Text(f": {report.events.files:,} files, {report.events.rows:,} events loaded")
    )
    if report.reparse is not None:
        console.print(
            f"{report.reparse.count:,} files were parsed by an older parser: queued to be "
            f"parsed again (operation {report.reparse.operation_id})",
            highlight=False,
        )
        follow(ctx, report.reparse.file_set)
        print_outcome(ctx, report.reparse.file_set)

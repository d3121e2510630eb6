"""`casescope rules ...` (detections: cli/detections.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from casescope.cli.common import console, friendly_errors, open_app, shown
from casescope.cli.follow import follow
from casescope.cli.placeholders import app as placeholders_app
from casescope.cli.tables import Listing
from casescope.detect.levels import SigmaLevel, SigmaStatus
from casescope.errors import CasescopeError
from casescope.model.enums import Operation
from casescope.services.cases import get_case
from casescope.services.placeholders import load_placeholder_file, set_placeholders
from casescope.services.reprocess import requeue_files
from casescope.services.rule_sets import rule_sets
from casescope.store.rulesets import (
    RuleSelector,
    delete_rule_set,
    import_rules,
    list_rules,
    rule_set_leaving,
    set_enabled,
)
from casescope.units import counted

app = typer.Typer(help="Import and list Sigma rules.", no_args_is_help=True)
app.add_typer(placeholders_app, name="placeholders")


@app.command("import")
@friendly_errors
def import_(
    path: Annotated[Path, typer.Argument(help="A folder tree or .zip of Sigma YAML rules.")],
    name: Annotated[
        str | None, typer.Option(help="Name of this rule set (default: folder).")
    ] = None,
    placeholders: Annotated[
        Path | None,
        typer.Option(help="YAML file of |expand placeholder values: {known_cdcs: [DC01]}."),
    ] = None,
) -> None:
    """Import Sigma rules; rules that cannot load or compile are kept with the reason."""
    ctx = open_app("rules import")
    if placeholders is not None:
        values = load_placeholder_file(placeholders)
        set_placeholders(ctx.db, ctx.settings, dict(values))
    with console.status("loading and compiling rules..."):
        report = import_rules(ctx.db, ctx.settings, path, name)
    console.print(
        f"{report.source}: {counted(report.rules, 'rule')} loaded ({report.warned:,} with "
        f"warnings, {report.off:,} off by the rule set's defaults), {report.failed:,} cannot run "
        "(see `casescope rules list --failed`)",
        highlight=False,
    )
    if report.removed.rules:
        console.print("no longer in the set: " + report.removed.describe(), highlight=False)


@app.command("list")
@friendly_errors
def list_(
    failed: Annotated[bool, typer.Option("--failed", help="Only rules that cannot run.")] = False,
    warned: Annotated[
        bool, typer.Option("--warnings", help="Only rules loaded with warnings.")
    ] = False,
) -> None:
    """List imported rules (or only those that failed, with why, or carry warnings)."""
    ctx = open_app("rules list")
    title = "title" if not failed else "path"
    table = Listing("source", "id", "level", "on", title, "error", "warnings")
    for rule in list_rules(ctx.db, failed=failed, warned=warned):
        table.add_row(
            shown(rule.source),
            rule.rule_uid[:36],
            rule.level,
            "yes" if rule.enabled else "no",
            shown(rule.path if failed else rule.title),
            shown(rule.error or ""),
            shown((rule.warnings or "").replace("\n", "; ")),
        )
    console.print(table)


IdOpt = Annotated[list[str] | None, typer.Option("--id", help="Sigma rule id (repeatable).")]
LevelOpt = Annotated[list[SigmaLevel] | None, typer.Option("--level", help="Level (repeatable).")]
StatusOpt = Annotated[
    list[SigmaStatus] | None, typer.Option("--status", help="Status (repeatable).")
]
PathOpt = Annotated[str | None, typer.Option("--path", help="Glob on the rule's path.")]
TagOpt = Annotated[
    list[str] | None,
    typer.Option("--tag", help="Tag, any of them (repeatable; * matches any text)."),
]
SourceOpt = Annotated[
    list[str] | None, typer.Option("--source", help="Only rules of this rule set (repeatable).")
]


@dataclass(frozen=True)
class _Criteria:
    ids: list[str] | None
    levels: list[SigmaLevel] | None
    statuses: list[SigmaStatus] | None
    path: str | None
    tags: list[str] | None
    sources: list[str] | None

    def selector(self) -> RuleSelector:
        return RuleSelector(
            tuple(self.ids or ()),
            tuple(self.levels or ()),
            tuple(self.statuses or ()),
            self.path,
            tuple(self.tags or ()),
            tuple(self.sources or ()),
        )


def _toggle(enabled: bool, criteria: _Criteria) -> None:
    ctx = open_app("rules enable" if enabled else "rules disable")
    selector = criteria.selector()
    changed = set_enabled(ctx.db, ctx.settings, selector, enabled)
    state = "enabled" if enabled else "disabled"
    console.print(
        f"{counted(changed, 'rule')} {state}; re-run with `casescope rules run`", highlight=False
    )


@app.command("enable")
@friendly_errors
def enable(
    ids: IdOpt = None,
    levels: LevelOpt = None,
    statuses: StatusOpt = None,
    path: PathOpt = None,
    tags: TagOpt = None,
    sources: SourceOpt = None,
) -> None:
    """Enable rules by id, level, status, tag or path, within rule sets.

    The criteria combine with AND."""
    _toggle(True, _Criteria(ids, levels, statuses, path, tags, sources))


@app.command("disable")
@friendly_errors
def disable(
    ids: IdOpt = None,
    levels: LevelOpt = None,
    statuses: StatusOpt = None,
    path: PathOpt = None,
    tags: TagOpt = None,
    sources: SourceOpt = None,
) -> None:
    """Disable rules by id, level, status, tag or path, within rule sets.

    The criteria combine with AND."""
    _toggle(False, _Criteria(ids, levels, statuses, path, tags, sources))


@app.command("sets")
@friendly_errors
def sets() -> None:
    """List the imported rule sets: rules, running, cannot run, with warnings."""
    ctx = open_app("rules sets")
    table = Listing("rule set", "rules", "running", "cannot run", "warnings", "imported (UTC)")
    for found in rule_sets(ctx.db):
        imported = found.imported_at.strftime("%Y-%m-%d %H:%M:%S") if found.imported_at else ""
        table.add_row(
            shown(found.source),
            f"{found.rules:,}",
            f"{found.enabled:,}",
            f"{found.failed:,}",
            f"{found.warned:,}",
            imported,
        )
    console.print(table)


@app.command("delete")
@friendly_errors
def delete(
    name: Annotated[str, typer.Argument(help="The rule set (`casescope rules sets`).")],
    yes: Annotated[
        bool, typer.Option("--yes", help="Do not ask: for scripts (the name is the argument).")
    ] = False,
) -> None:
    """Delete a rule set: its rules and their hits in every case.

    Says what would go, then asks for the set's name again (or `--yes`). The active set is
    compiled again without its rules; other sets and their hits are untouched."""
    ctx = open_app("rules delete")
    leaving = rule_set_leaving(ctx.db, name)
    console.print(Text("rule set ") + shown(name) + ": " + leaving.describe("to remove"))
    confirm = name if yes else typer.prompt("Type the rule set's name to delete it")
    if confirm != name:
        raise CasescopeError("the name typed does not match: nothing was deleted")
    removed = delete_rule_set(ctx.db, ctx.settings, name)
    console.print(Text("rule set ") + shown(name) + ": " + removed.describe())


@app.command("run")
@friendly_errors
def run(
    case: Annotated[str, typer.Option("--case", "-c", help="Case to re-run the rules on.")],
    file_ids: Annotated[
        list[int] | None, typer.Option("--file", help="Only these file ids (repeatable).")
    ] = None,
) -> None:
    """Re-run the active rules on a case's files from their segments (no re-parsing)."""
    ctx = open_app("rules run")
    case_row = get_case(ctx.db, case)
    files = requeue_files(ctx.db, ctx.settings, case_row.id, Operation.SIGMA_ONLY, file_ids)
    console.print(f"queued {files.count:,} files for Sigma", highlight=False)
    if files.count:
        follow(ctx, files.file_set)

"""`casescope rules placeholders set|list|unset`: values of `|expand` placeholders."""

from __future__ import annotations

from typing import Annotated

import typer

from casescope.cli.common import console, friendly_errors, open_app, shown
from casescope.cli.tables import Listing
from casescope.detect.placeholders import parse_values
from casescope.services.placeholders import list_placeholders, set_placeholders
from casescope.units import counted

app = typer.Typer(
    help="Values of Sigma |expand placeholders (%known_cdcs%...).", no_args_is_help=True
)


def _report(changed: int, rules: int) -> None:
    if not changed:
        console.print("nothing changed", highlight=False)
        return
    console.print(
        f"{counted(rules, 'rule')} now compile or no longer do; re-run with `casescope rules run`",
        highlight=False,
    )


@app.command("set")
@friendly_errors
def set_(
    name: Annotated[str, typer.Argument(help="Placeholder name, e.g. known_cdcs.")],
    values: Annotated[str, typer.Argument(help="Comma-separated values, e.g. DC01,DC02.")],
) -> None:
    """Give a placeholder its values (replacing any it had)."""
    ctx = open_app("rules placeholders set")
    change = set_placeholders(ctx.db, ctx.settings, {name: parse_values(values)})
    _report(change.changed, change.rules)


@app.command("unset")
@friendly_errors
def unset(name: Annotated[str, typer.Argument(help="Placeholder name.")]) -> None:
    """Remove a placeholder's values (rules using it stop running)."""
    ctx = open_app("rules placeholders unset")
    change = set_placeholders(ctx.db, ctx.settings, {name: None})
    _report(change.changed, change.rules)


@app.command("list")
@friendly_errors
def list_() -> None:
    """Placeholders and their values."""
    ctx = open_app("rules placeholders list")
    table = Listing("placeholder", "values", "set by", "at")
    for item in list_placeholders(ctx.db):
        table.add_row(
            shown(f"%{item.name}%"),
            shown(", ".join(item.values)),
            shown(item.updated_by),
            item.updated_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        )
    console.print(table)

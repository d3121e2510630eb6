"""`casescope exclusions add|list|remove`: silence known-benign Sigma hits in one case."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from casescope.cli.common import console, friendly_errors, open_app, shown
from casescope.cli.tables import Listing
from casescope.services.cases import get_case
from casescope.services.exclusions import (
    ExclusionInputError,
    NewExclusion,
    add_exclusion,
    apply_all,
    conditions_of,
    list_exclusions,
    remove_exclusion,
)

app = typer.Typer(
    help="Hide a case's known-benign Sigma hits (kept, countable, restorable).",
    no_args_is_help=True,
)
CaseOpt = Annotated[str, typer.Option("--case", "-c", help="Case name.")]


@app.command("add")
@friendly_errors
def add(
    case: CaseOpt,
    rule: Annotated[str | None, typer.Option(help="Sigma rule id whose hits to hide.")] = None,
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where",
            help="Only hits whose event has FIELD=VALUE (repeatable; Sigma matching: any "
            "case, * wildcards; a field given twice matches either value).",
        ),
    ] = None,
    source: Annotated[str | None, typer.Option(help="Only this rule set's rule.")] = None,
    filter_file: Annotated[
        Path | None, typer.Option("--filter", help="A Sigma filter document (YAML).")
    ] = None,
    note: Annotated[str, typer.Option(help="Why (shown in the list).")] = "",
) -> None:
    """Hide a rule's hits in the case (all, or where fields hold values).

    Or those a Sigma filter document excludes."""
    ctx = open_app("exclusions add")
    case_id = get_case(ctx.db, case).id
    document = ""
    if filter_file is not None:
        try:
            document = filter_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ExclusionInputError(f"cannot read {filter_file}: {exc}") from None
    request = NewExclusion(rule, source, conditions_of(where or []), document, note)
    new_id = add_exclusion(ctx.db, case_id, request)
    hidden = next(e.hidden for e in list_exclusions(ctx.db, case_id) if e.id == new_id)
    console.print(f"exclusion {new_id} added: {hidden:,} hits hidden", highlight=False)


@app.command("list")
@friendly_errors
def list_(case: CaseOpt) -> None:
    """The case's exclusions and the hits each hides."""
    ctx = open_app("exclusions list")
    table = Listing(
        "id", "kind", "rules", "set", "where", "hidden", "note", "by", title="exclusions"
    )
    for item in list_exclusions(ctx.db, get_case(ctx.db, case).id):
        where = "; ".join(f"{k}={'|'.join(v)}" for k, v in item.conditions.items())
        table.add_row(
            str(item.id),
            item.kind.value,
            shown(", ".join(item.rule_uids)),
            shown(item.source or "any"),
            shown(where or ("filter document" if item.document else "all hits")),
            f"{item.hidden:,}",
            shown(item.note),
            shown(item.created_by),
        )
    console.print(table)


@app.command("remove")
@friendly_errors
def remove(
    case: CaseOpt, exclusion_id: Annotated[int, typer.Argument(help="Exclusion id.")]
) -> None:
    """Remove an exclusion: its hits are shown again (unless another one hides them)."""
    ctx = open_app("exclusions remove")
    hidden = remove_exclusion(ctx.db, get_case(ctx.db, case).id, exclusion_id)
    console.print(f"exclusion {exclusion_id} removed: {hidden:,} hits shown again", highlight=False)


@app.command("apply")
@friendly_errors
def apply(case: CaseOpt) -> None:
    """Re-decide every hit of the case against its exclusions.

    For when an exclusion changed while files were being evaluated."""
    ctx = open_app("exclusions apply")
    hidden = apply_all(ctx.db, get_case(ctx.db, case).id)
    console.print(f"{hidden:,} hits hidden", highlight=False)

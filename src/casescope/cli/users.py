"""`casescope user`: create web users and give them access to cases."""

from __future__ import annotations

from typing import Annotated

import typer

from casescope.cli.common import console, friendly_errors, open_app
from casescope.model.users import Role
from casescope.services.cases import get_case
from casescope.services.users import create_user, grant_case, list_users

app = typer.Typer(help="Web app users (see docs/web.md).", no_args_is_help=True)


@app.command("create")
@friendly_errors
def create(
    username: Annotated[str, typer.Argument(help="Login name.")],
    admin: Annotated[bool, typer.Option("--admin", help="Make an admin.")] = False,
    read_only: Annotated[bool, typer.Option("--read-only", help="Make a read-only user.")] = False,
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            confirmation_prompt=True,
            hide_input=True,
            help="Prompted when not given (avoid passing it on the command line).",
        ),
    ] = "",
) -> None:
    """Create a user (analyst unless --admin or --read-only); the password is prompted."""
    if admin and read_only:
        raise typer.BadParameter("--admin and --read-only exclude each other")
    role = Role.ADMIN if admin else Role.READ_ONLY if read_only else Role.ANALYST
    ctx = open_app("user")
    user = create_user(ctx.db, username, password, role)
    console.print(f"created {user.role.value} [bold]{user.username}[/]", highlight=False)


@app.command("grant")
@friendly_errors
def grant(
    username: Annotated[str, typer.Argument(help="Login name.")],
    case: Annotated[str, typer.Option("--case", "-c", help="Case name.")],
) -> None:
    """Give a user access to a case."""
    ctx = open_app("user")
    grant_case(ctx.db, username, get_case(ctx.db, case).id)
    console.print(f"{username} can now open case {case}", highlight=False)


@app.command("list")
@friendly_errors
def list_() -> None:
    """List users and roles."""
    ctx = open_app("user")
    for user in list_users(ctx.db):
        state = "" if user.active else " (disabled)"
        console.print(f"{user.username}\t{user.role.value}{state}", highlight=False)

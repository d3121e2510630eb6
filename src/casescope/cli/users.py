"""`casescope user`: web users — create, list, disable/enable, delete, reset a password,
change a role, case grants — and their API tokens (`casescope user tokens`).

The rules (sessions and tokens that end at once, the last admin, what a deleted user leaves
behind) are those of services/accounts.py, the same as the admin API's.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer

from casescope.cli.common import console, friendly_errors, open_app, shown
from casescope.cli.tables import Listing
from casescope.errors import CasescopeError
from casescope.model.users import Role
from casescope.services import accounts
from casescope.services.cases import get_case
from casescope.services.grants import list_grants
from casescope.services.tokens import list_tokens, revoke_token
from casescope.services.users import (
    create_user,
    get_by_name,
    grant_case,
    list_users,
    revoke_case,
)

app = typer.Typer(
    help="Web app users and their API tokens (see docs/web.md).", no_args_is_help=True
)
tokens_app = typer.Typer(help="API tokens: list, revoke.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")


class ListFormat(StrEnum):
    TABLE = "table"
    JSONL = "jsonl"


FormatOpt = Annotated[ListFormat, typer.Option("--format", help="table or jsonl.")]
UserArg = Annotated[str, typer.Argument(help="Login name.")]


@app.command("create")
@friendly_errors
def create(
    username: UserArg,
    admin: Annotated[bool, typer.Option("--admin", help="Make an admin.")] = False,
    read_only: Annotated[bool, typer.Option("--read-only", help="Make a read-only user.")] = False,
    must_change: Annotated[
        bool, typer.Option("--must-change", help="The first login must change the password.")
    ] = False,
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
    user = create_user(ctx.db, username, password, role, must_change_password=must_change)
    console.print("created", user.role.value, shown(user.username), highlight=False)


@app.command("grant")
@friendly_errors
def grant(
    username: UserArg,
    case: Annotated[str, typer.Option("--case", "-c", help="Case name.")],
) -> None:
    """Give a user access to a case."""
    ctx = open_app("user")
    grant_case(ctx.db, username, get_case(ctx.db, case).id)
    console.print(shown(f"{username} can now open case {case}"), highlight=False)


@app.command("revoke")
@friendly_errors
def revoke(
    username: UserArg,
    case: Annotated[str, typer.Option("--case", "-c", help="Case name.")],
) -> None:
    """Take a user's access to a case away (admins open every case regardless)."""
    ctx = open_app("user")
    revoke_case(ctx.db, username, get_case(ctx.db, case).id)
    console.print(shown(f"{username} can no longer open case {case}"), highlight=False)


@app.command("grants")
@friendly_errors
def grants() -> None:
    """List case grants: which user (not admins, who open every case) may open which case."""
    ctx = open_app("user")
    table = Listing("user", "role", "state", "case id", "case")
    for found in list_grants(ctx.db):
        state = "active" if found.active else "disabled"
        table.add_row(
            shown(found.username),
            found.role.value,
            state,
            str(found.case_id),
            shown(found.case_name),
        )
    console.print(table)


def _when(value: datetime | float | None) -> str:
    if value is None:
        return ""
    moment = datetime.fromtimestamp(value, UTC) if isinstance(value, float) else value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@app.command("list")
@friendly_errors
def list_(fmt: FormatOpt = ListFormat.TABLE) -> None:
    """List users: role, active or disabled, must change password, last login."""
    ctx = open_app("user")
    users = list_users(ctx.db)
    if fmt is ListFormat.JSONL:
        for user in users:
            console.print(json.dumps(user.as_dict()), highlight=False, soft_wrap=True)
        return
    table = Listing("user", "role", "state", "must change password", "last login")
    for user in users:
        state = "active" if user.active else "disabled"
        must = "yes" if user.must_change_password else ""
        table.add_row(shown(user.username), user.role.value, state, must, _when(user.last_login_at))
    console.print(table)


def _set_active(username: str, active: bool) -> None:
    ctx = open_app("user")
    accounts.set_active(ctx.db, username, active)
    console.print("enabled" if active else "disabled", shown(username), highlight=False)


@app.command("disable")
@friendly_errors
def disable(username: UserArg) -> None:
    """Disable a user: their sessions and API tokens stop working at once."""
    _set_active(username, False)


@app.command("enable")
@friendly_errors
def enable(username: UserArg) -> None:
    """Enable a disabled user again (they log in anew; unexpired tokens work again)."""
    _set_active(username, True)


@app.command("delete")
@friendly_errors
def delete(
    username: UserArg,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a user, with their sessions, tokens, grants and saved searches.

    Their audit rows and event marks stay, under their name."""
    ctx = open_app("user")
    get_by_name(ctx.db, username)  # a clear error before the question
    if not yes:
        typed = typer.prompt(f"Type the user name ({username}) to delete it")
        if typed != username:
            raise CasescopeError("the name typed does not match; nothing deleted")
    accounts.delete_user(ctx.db, username)
    console.print("deleted", shown(username), highlight=False)


@app.command("reset-password")
@friendly_errors
def reset_password(
    username: UserArg,
    generate: Annotated[
        bool, typer.Option("--generate", help="Generate a password and print it once.")
    ] = False,
    password: Annotated[
        str | None,
        typer.Option(help="The new password; prompted unless given or --generate."),
    ] = None,
) -> None:
    """Set a new password the user must change at their next login; their sessions end."""
    if generate and password:
        raise typer.BadParameter("--generate and --password exclude each other")
    if not generate and password is None:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    ctx = open_app("user")
    generated = accounts.reset_password(ctx.db, username, None if generate else password)
    console.print("password reset for", shown(username), highlight=False)
    if generated:
        console.print(f"temporary password (shown once): {generated}", highlight=False)


@app.command("set-role")
@friendly_errors
def set_role(
    username: UserArg,
    role: Annotated[Role, typer.Argument(help="admin, analyst or read_only.")],
) -> None:
    """Change a user's role (applies to their next request)."""
    ctx = open_app("user")
    accounts.set_role(ctx.db, username, role)
    console.print(shown(username), "is now", role.value, highlight=False)


@tokens_app.command("list")
@friendly_errors
def tokens_list(
    user: Annotated[str | None, typer.Option("--user", "-u", help="Only this user's.")] = None,
    fmt: FormatOpt = ListFormat.TABLE,
) -> None:
    """API tokens (never their secret): owner, scope, expiry, last use, revoked."""
    ctx = open_app("user")
    owner = get_by_name(ctx.db, user).id if user else None
    tokens = list_tokens(ctx.db, owner)
    if fmt is ListFormat.JSONL:
        for token in tokens:
            console.print(json.dumps(token.as_dict()), highlight=False, soft_wrap=True)
        return
    table = Listing("id", "user", "name", "scope", "created", "expires", "last used", "revoked")
    for t in tokens:
        table.add_row(
            str(t.id),
            shown(t.username),
            shown(t.name),
            t.scope.value,
            _when(t.created_at),
            _when(t.expires_at),
            _when(t.last_used_at),
            "yes" if t.revoked else "",
        )
    console.print(table)


@tokens_app.command("revoke")
@friendly_errors
def tokens_revoke(
    token_id: Annotated[int, typer.Argument(min=1, max=2**63 - 1, help="Token id (see list).")],
) -> None:
    """Revoke an API token (any user's)."""
    ctx = open_app("user")
    revoke_token(ctx.db, token_id, None, "cli")
    console.print(f"revoked token {token_id}", highlight=False)

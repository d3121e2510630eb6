"""`casescope user …` through the real command: the account lifecycle and API tokens, with the
sessions and tokens of a changed account checked in the real DB."""

from __future__ import annotations

import json
import secrets

import pytest
from sqlalchemy import select

from casescope.model.tables import AuditRecord
from casescope.model.users import TokenScope
from casescope.services.auth import find_session, open_session
from casescope.services.tokens import NewToken, create_token, verify_token
from casescope.services.users import authenticate, get_by_name
from tests.e2e.conftest import Cli, SharedHome

PASSWORD = "correct horse battery"
SECRET = secrets.token_urlsafe(48)


@pytest.fixture(scope="module")
def _team(tmp_path_factory: pytest.TempPathFactory) -> SharedHome:
    cli = Cli(tmp_path_factory.mktemp("users") / "home")
    cli.run("user", "create", "root", "--admin", "--password", PASSWORD)
    cli.run("user", "create", "ana", "--password", PASSWORD)
    cli.run("user", "create", "rita", "--read-only", "--password", PASSWORD)
    return SharedHome(cli).seal()


@pytest.fixture
def team(_team: SharedHome) -> Cli:
    """A home with an admin (root), an analyst (ana) and a read-only user (rita): made once
    by real `user create` runs, put back as it was for each test."""
    return _team.fresh()


def _users(cli: Cli) -> dict[str, dict]:
    """`user list` as JSON lines, run in this process (`Cli.invoke`): it reads what the real
    `user` commands wrote (a real `user list` is read in the first test)."""
    listed = cli.invoke("user", "list", "--format", "jsonl")
    assert listed.returncode == 0, listed.stderr
    return {u["username"]: u for u in map(json.loads, listed.stdout.splitlines())}


def _session_and_token(cli: Cli, name: str) -> tuple[str, str]:
    db = cli.db()
    user_id = get_by_name(db, name).id
    session_id, _ = open_session(db, SECRET, user_id, 1)
    token, _ = create_token(db, SECRET, NewToken(user_id, "ci", 1, TokenScope.READ), 90, "test")
    return session_id, token


def test_disable_ends_sessions_and_tokens_and_enable_brings_login_back(team: Cli) -> None:
    session_id, token = _session_and_token(team, "ana")
    team.run("user", "disable", "ana")
    db = team.db()
    assert find_session(db, SECRET, session_id) is None
    assert verify_token(db, SECRET, token) is None
    assert authenticate(db, "ana", PASSWORD) is None
    assert _users(team)["ana"]["active"] is False
    team.run("user", "enable", "ana")
    assert authenticate(team.db(), "ana", PASSWORD) is not None
    assert verify_token(team.db(), SECRET, token) is not None
    table = team.run("user", "list").stdout
    assert "ana" in table and "disabled" not in table


def test_the_last_active_admin_cannot_go(team: Cli) -> None:
    for args in (("disable", "root"), ("set-role", "root", "analyst"), ("delete", "root", "--yes")):
        proc = team.invoke("user", *args)  # what it says is the point: in this process
        assert proc.returncode == 1 and "last active admin" in proc.stderr, proc.stderr
    assert _users(team)["root"]["role"] == "admin" and _users(team)["root"]["active"]
    team.run("user", "set-role", "ana", "admin")
    team.run("user", "set-role", "root", "read_only")
    assert _users(team)["root"]["role"] == "read_only"
    bad = team.invoke("user", "set-role", "ana", "superuser")
    assert bad.returncode == 2 and "superuser" in bad.stderr


def test_reset_password_generated_and_must_change(team: Cli) -> None:
    session_id, _ = _session_and_token(team, "rita")
    out = team.run("user", "reset-password", "rita", "--generate").stdout
    temporary = out.split("temporary password (shown once):")[1].split()[0]
    db = team.db()
    assert find_session(db, SECRET, session_id) is None
    assert authenticate(db, "rita", PASSWORD) is None
    user = authenticate(db, "rita", temporary)
    assert user is not None and user.must_change_password
    team.run("user", "reset-password", "rita", "--password", "another long one")
    assert authenticate(team.db(), "rita", "another long one") is not None
    short = team.invoke("user", "reset-password", "rita", "--password", "short")
    assert short.returncode == 1 and "at least 10" in short.stderr


def test_delete_needs_the_name_typed_and_keeps_the_audit(team: Cli) -> None:
    session_id, token = _session_and_token(team, "ana")
    wrong = team.run("user", "delete", "ana", check=False, input="anna\n")
    assert wrong.returncode == 1 and "does not match" in wrong.stderr
    assert "ana" in _users(team)
    team.run("user", "delete", "ana", input="ana\n")
    db = team.db()
    assert "ana" not in _users(team)
    assert find_session(db, SECRET, session_id) is None
    assert verify_token(db, SECRET, token) is None
    with db.read() as session:
        actions = set(session.scalars(select(AuditRecord.action)))
    assert {"user.create", "user.delete"} <= actions
    missing = team.invoke("user", "disable", "nobody")
    assert missing.returncode == 1 and "no user named 'nobody'" in missing.stderr


def test_tokens_list_and_revoke(team: Cli) -> None:
    _, token = _session_and_token(team, "rita")
    # the listings in this process (`Cli.invoke`) but the table, a real one
    listed = team.invoke("user", "tokens", "list", "--format", "jsonl").stdout
    rows = [json.loads(line) for line in listed.splitlines()]
    assert [(r["username"], r["scope"]) for r in rows] == [("rita", "read")]
    assert token not in team.run("user", "tokens", "list").stdout
    assert "rita" in team.invoke("user", "tokens", "list", "--user", "rita").stdout
    team.run("user", "tokens", "revoke", str(rows[0]["id"]))
    assert verify_token(team.db(), SECRET, token) is None
    gone = team.invoke("user", "tokens", "revoke", "999")
    assert gone.returncode == 1 and "no token 999" in gone.stderr


def test_grants_listed_and_revoked(team: Cli) -> None:
    assert team.invoke("case", "create", "ir-1").returncode == 0  # not tested: in-process
    team.run("user", "grant", "ana", "--case", "ir-1")
    team.run("user", "grant", "rita", "--case", "ir-1")
    listed = team.run("user", "grants").stdout
    assert "ana" in listed and "rita" in listed and "ir-1" in listed and "root" not in listed
    done = team.run("user", "revoke", "ana", "--case", "ir-1").stdout
    assert "ana can no longer open case ir-1" in done
    after = team.invoke("user", "grants").stdout  # what the real revoke left
    rows = [line for line in after.splitlines() if "ir-1" in line]
    assert len(rows) == 1 and "rita" in rows[0]
    missing = team.invoke("user", "revoke", "ana", "--case", "no-such-case")
    assert missing.returncode == 1

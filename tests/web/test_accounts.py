"""The user lifecycle over the API: disable, enable, delete, reset password, change role,
change own password; sessions and tokens that stop at once; the last admin protected;
logins, failed logins and logouts audited."""

from __future__ import annotations

import itertools
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from casescope.model.users import EventMarkRecord, SavedSearch, WebSession
from tests.web.conftest import PASSWORD, Web, login

_names = itertools.count(1)
NEW_PASSWORD = "a much better passphrase"


def new_user(web: Web, role: str = "analyst") -> tuple[str, TestClient]:
    """A fresh user of `role` with access to the case, logged in."""
    name = f"user{next(_names)}-{role}"
    admin = web.clients["admin"]
    r = admin.post("/api/users", json={"username": name, "password": PASSWORD, "role": role})
    assert r.status_code == 200, r.text
    admin.post(f"/api/users/{name}/cases/{web.case_id}")
    return name, login(web.app, name)


def bearer(web: Web, client: TestClient, **body: object) -> dict[str, str]:
    r = client.post("/api/tokens", json={"name": "t", "days": 1, **body})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def users(web: Web) -> dict[str, dict]:
    return {u["username"]: u for u in web.clients["admin"].get("/api/users").json()}


def audit(web: Web, action: str) -> list[dict]:
    return web.clients["admin"].get("/api/audit", params={"action": action, "limit": 500}).json()


def test_disable_ends_sessions_and_tokens_at_once_and_enable_restores_login(bare: Web) -> None:
    name, client = new_user(bare)
    token = bearer(bare, client)
    assert bare.anonymous.get("/api/cases", headers=token).status_code == 200
    r = bare.clients["admin"].post(f"/api/users/{name}/disable")
    assert r.status_code == 200, r.text
    assert client.get("/api/me").status_code == 401
    assert bare.anonymous.get("/api/cases", headers=token).status_code == 401
    denied = bare.anonymous.post("/api/login", json={"username": name, "password": PASSWORD})
    assert denied.status_code == 401
    assert users(bare)[name]["active"] is False
    with bare.app.state.web.db.read() as session:
        user_id = users(bare)[name]["id"]
        count = select(func.count()).select_from(WebSession).where(WebSession.user_id == user_id)
        assert session.scalar(count) == 0
    assert bare.clients["admin"].post(f"/api/users/{name}/enable").status_code == 200
    assert login(bare.app, name).get("/api/me").json()["username"] == name
    assert client.get("/api/me").status_code == 401  # the old session stays ended
    assert bare.anonymous.get("/api/cases", headers=token).status_code == 200
    assert [a["detail"] for a in audit(bare, "user.disable")][:1] == [name]


def test_delete_ends_access_keeps_audit_and_marks_drops_saved_searches(bare: Web) -> None:
    name, client = new_user(bare)
    token = bearer(bare, client)
    case = f"/api/cases/{bare.case_id}"
    assert client.post(f"{case}/events/1/1/marks", json={"kind": "star"}).status_code == 200
    saved = client.post(f"{case}/saved-searches", json={"name": "mine", "params": {"q": "x"}})
    assert saved.status_code == 201, saved.text
    r = bare.clients["admin"].delete(f"/api/users/{name}")
    assert r.status_code == 200, r.text
    assert client.get("/api/me").status_code == 401
    assert bare.anonymous.get("/api/cases", headers=token).status_code == 401
    assert name not in users(bare)
    with bare.app.state.web.db.read() as session:
        marks = session.scalars(select(EventMarkRecord.actor)).all()
        searches = session.scalar(
            select(func.count()).select_from(SavedSearch).where(SavedSearch.name == "mine")
        )
    assert name in marks and searches == 0
    rows = bare.clients["admin"].get("/api/audit?limit=500").json()
    actions = {a["action"] for a in rows if a["actor"] == f"web:{name}"}
    assert {"event.star", "user.login", "token.create"} <= actions
    assert [a["detail"] for a in audit(bare, "user.delete")][:1] == [name]
    # the name is free again, for a new account with nothing of the old one
    again = bare.clients["admin"].post(
        "/api/users", json={"username": name, "password": PASSWORD, "role": "read_only"}
    )
    assert again.status_code == 200
    assert bare.anonymous.get("/api/cases", headers=token).status_code == 401


def test_reset_password_forces_a_change_before_anything_else(bare: Web) -> None:
    name, client = new_user(bare)
    r = bare.clients["admin"].post(f"/api/users/{name}/reset-password", json={})
    assert r.status_code == 200, r.text
    temporary = r.json()["password"]
    assert len(temporary) >= 16
    assert client.get("/api/me").status_code == 401  # every session of the user ended
    assert users(bare)[name]["must_change_password"] is True
    fresh = TestClient(bare.app, base_url="https://testserver")
    body = fresh.post("/api/login", json={"username": name, "password": temporary}).json()
    assert body["must_change_password"] is True
    fresh.headers["X-CSRF-Token"] = body["csrf_token"]
    refused = fresh.get("/api/cases")
    assert refused.status_code == 403 and "password" in refused.json()["detail"]
    assert fresh.post("/api/cases", json={"name": "sneaky"}).status_code == 403
    assert fresh.post("/api/tokens", json={"name": "sneaky"}).status_code == 403
    assert fresh.get("/api/me").json()["must_change_password"] is True
    page = fresh.get("/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/password"
    same = fresh.post(
        "/api/me/password", json={"current_password": temporary, "new_password": temporary}
    )
    assert same.status_code == 400
    changed = fresh.post(
        "/api/me/password", json={"current_password": temporary, "new_password": NEW_PASSWORD}
    )
    assert changed.status_code == 200, changed.text
    assert fresh.get("/api/cases").status_code == 200
    assert users(bare)[name]["must_change_password"] is False


def test_reset_password_to_a_chosen_one(bare: Web) -> None:
    name, _ = new_user(bare)
    admin = bare.clients["admin"]
    short = admin.post(f"/api/users/{name}/reset-password", json={"password": "short"})
    assert short.status_code == 400
    r = admin.post(f"/api/users/{name}/reset-password", json={"password": NEW_PASSWORD})
    assert r.status_code == 200 and "password" not in r.json()
    ok = bare.anonymous.post("/api/login", json={"username": name, "password": NEW_PASSWORD})
    assert ok.status_code == 200 and ok.json()["must_change_password"] is True
    bare.anonymous.cookies.clear()


def test_password_change_ends_the_other_sessions_only(bare: Web) -> None:
    name, laptop = new_user(bare)
    phone = login(bare.app, name)
    token = bearer(bare, laptop)
    wrong = laptop.post(
        "/api/me/password", json={"current_password": "not my password", "new_password": "x" * 12}
    )
    assert wrong.status_code == 403
    short = laptop.post(
        "/api/me/password", json={"current_password": PASSWORD, "new_password": "x"}
    )
    assert short.status_code == 400
    r = laptop.post(
        "/api/me/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert r.status_code == 200, r.text
    assert laptop.get("/api/me").status_code == 200
    assert phone.get("/api/me").status_code == 401
    assert bare.anonymous.get("/api/cases", headers=token).status_code == 200  # tokens stay
    with_token = bare.anonymous.post(
        "/api/me/password",
        json={"current_password": NEW_PASSWORD, "new_password": "y" * 12},
        headers=token,
    )
    assert with_token.status_code == 403
    assert [a["actor"] for a in audit(bare, "user.password")][:1] == [f"web:{name}"]


def test_a_new_login_keeps_the_other_sessions(bare: Web) -> None:
    name, first = new_user(bare)
    login(bare.app, name)
    assert first.get("/api/me").status_code == 200


def test_role_change_applies_at_once(bare: Web) -> None:
    name, client = new_user(bare, "read_only")
    assert client.post("/api/cases", json={"name": f"by {name}"}).status_code == 403
    r = bare.clients["admin"].post(f"/api/users/{name}/role", json={"role": "analyst"})
    assert r.status_code == 200, r.text
    assert client.post("/api/cases", json={"name": f"by {name}"}).status_code == 201
    bare.clients["admin"].post(f"/api/users/{name}/role", json={"role": "read_only"})
    assert client.post("/api/cases", json={"name": f"again by {name}"}).status_code == 403
    bad = bare.clients["admin"].post(f"/api/users/{name}/role", json={"role": "root"})
    assert bad.status_code == 422
    assert users(bare)[name]["role"] == "read_only"
    assert [a["detail"] for a in audit(bare, "user.role")][:1] == [f"{name} read_only"]


def test_the_last_active_admin_stays(bare: Web) -> None:
    admin = bare.clients["admin"]
    for method, path, body in (
        ("POST", "/api/users/admin/disable", None),
        ("POST", "/api/users/admin/role", {"role": "analyst"}),
        ("DELETE", "/api/users/admin", None),
    ):
        r = admin.request(method, path, json=body)
        assert r.status_code == 409 and "last active admin" in r.json()["detail"], r.text
    second, _ = new_user(bare, "admin")
    assert admin.post(f"/api/users/{second}/disable").status_code == 200
    # a disabled admin does not count: still the last active one
    assert admin.post("/api/users/admin/role", json={"role": "analyst"}).status_code == 409
    assert admin.post(f"/api/users/{second}/enable").status_code == 200
    assert admin.post(f"/api/users/{second}/role", json={"role": "analyst"}).status_code == 200
    assert users(bare)["admin"] == {**users(bare)["admin"], "role": "admin", "active": True}


def test_unknown_user_is_404(bare: Web) -> None:
    admin = bare.clients["admin"]
    for r in (
        admin.post("/api/users/nobody/disable"),
        admin.post("/api/users/nobody/enable"),
        admin.delete("/api/users/nobody"),
        admin.post("/api/users/nobody/role", json={"role": "analyst"}),
        admin.post("/api/users/nobody/reset-password", json={}),
    ):
        assert r.status_code == 404 and r.json()["detail"] == "no user named 'nobody'"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/users/reader/disable", None),
        ("POST", "/api/users/reader/enable", None),
        ("DELETE", "/api/users/reader", None),
        ("POST", "/api/users/reader/reset-password", {}),
        ("POST", "/api/users/reader/role", {"role": "admin"}),
        ("GET", "/api/tokens?all=true", None),
    ],
)
def test_user_administration_is_for_admins_with_csrf(bare: Web, method, path, body) -> None:  # type: ignore[no-untyped-def]
    for role in ("analyst", "reader", "outsider"):
        r = bare.clients[role].request(method, path, json=body)
        assert r.status_code == 403, (role, r.text)
    if method != "GET":
        no_csrf = login(bare.app, "admin")
        del no_csrf.headers["X-CSRF-Token"]
        r = no_csrf.request(method, path, json=body)
        assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    assert users(bare)["reader"]["role"] == "read_only" and users(bare)["reader"]["active"]


def test_logins_failures_and_logouts_are_audited_without_passwords(bare: Web) -> None:
    name, client = new_user(bare)
    wrong = "WrongPassword-123"
    r = bare.anonymous.post("/api/login", json={"username": name, "password": wrong})
    assert r.status_code == 401
    assert client.post("/api/logout").status_code == 200
    logins = [a for a in audit(bare, "user.login") if a["actor"] == f"web:{name}"]
    failed = [a for a in audit(bare, "user.login_failed") if f"user={name}" in a["detail"]]
    logouts = [a for a in audit(bare, "user.logout") if a["actor"] == f"web:{name}"]
    assert logins and failed and logouts
    assert all("client=testclient" in a["detail"] for a in (logins[0], failed[0], logouts[0]))
    everything = bare.clients["admin"].get("/api/audit?limit=1000").text
    assert PASSWORD not in everything and wrong not in everything and NEW_PASSWORD not in everything


def test_the_password_page_after_a_reset(bare: Web) -> None:
    name, _ = new_user(bare)
    bare.clients["admin"].post(f"/api/users/{name}/reset-password", json={"password": PASSWORD})
    browser = TestClient(bare.app, base_url="https://testserver")
    login_csrf = re.search(r'name="login_csrf" value="([^"]+)"', browser.get("/login").text)
    assert login_csrf
    form = {"username": name, "password": PASSWORD, "login_csrf": login_csrf.group(1)}
    r = browser.post("/login", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/password"
    page = browser.get("/password").text
    assert "An admin reset your password" in page
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf
    fields = {"csrf_token": csrf.group(1), "current_password": PASSWORD}
    differ = browser.post(
        "/password", data={**fields, "new_password": NEW_PASSWORD, "confirm_password": "other"}
    )
    assert differ.status_code == 400 and "differ" in differ.text
    wrong = browser.post(
        "/password",
        data={
            **fields,
            "current_password": "not it at all",
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
    )
    assert wrong.status_code == 403
    no_csrf = {k: v for k, v in fields.items() if k != "csrf_token"}
    forged = browser.post(
        "/password",
        data={**no_csrf, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
    )
    assert forged.status_code == 403
    done = browser.post(
        "/password",
        data={**fields, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert browser.get("/", follow_redirects=False).status_code == 200

"""The admin pages for users and case grants, and the API tokens page, over real HTTP on a
real app: who may open them, CSRF on every form, each form doing what its API route does
(a disabled user's session and token stop at once, a reset password is shown once and must
be changed, a read-only token cannot write), names rendered inert, bad input a 4xx."""

from __future__ import annotations

import itertools
import re

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from tests.web.conftest import PASSWORD, ROLES, Web, login

ADMIN_PAGES = ("/admin/users", "/admin/grants", "/admin/rules")
HOSTILE = "<img/src=x/onerror=alert(1)>"
_names = itertools.count(1)


def post_form(client: TestClient, url: str, data: dict) -> Response:
    """POST a form as the browser does: no CSRF header (the client's is left off)."""
    request = client.build_request("POST", url, data=data)
    del request.headers["X-CSRF-Token"]
    return client.send(request, follow_redirects=False)


def form(client: TestClient, url: str, **fields: object) -> Response:
    """POST a form with the session's CSRF token in its field, as the pages do."""
    return post_form(client, url, {"csrf_token": client.headers["X-CSRF-Token"], **fields})


def new_user(web: Web, role: str = "analyst", name: str | None = None) -> str:
    name = name or f"page{next(_names)}-{role}"
    r = form(web.clients["admin"], "/admin/users", username=name, password=PASSWORD, role=role)
    assert r.status_code == 303, r.text
    return name


def users(web: Web) -> dict[str, dict]:
    return {u["username"]: u for u in web.clients["admin"].get("/api/users").json()}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", ADMIN_PAGES)
def test_admin_pages_are_for_admins_only(bare: Web, role: str, page: str) -> None:
    r = bare.clients[role].get(page)
    assert r.status_code == (200 if role == "admin" else 403), (role, page, r.status_code)


@pytest.mark.parametrize("role", ROLES)
def test_every_user_has_a_tokens_page_and_admins_an_admin_link(bare: Web, role: str) -> None:
    r = bare.clients[role].get("/tokens")
    assert r.status_code == 200
    assert ('href="/admin"' in r.text) is (role == "admin")
    assert 'id="all-tokens"' in r.text if role == "admin" else 'id="all-tokens"' not in r.text


ADMIN_FORMS = [
    ("/admin/users", {"username": "made-by-{role}", "password": PASSWORD}),
    ("/admin/users/disable", {"username": "analyst"}),
    ("/admin/users/role", {"username": "{role}", "role": "admin"}),
    ("/admin/users/reset-password", {"username": "admin"}),
    ("/admin/grants", {"username": "outsider", "case_id": "1"}),
    ("/admin/grants/revoke", {"username": "reader", "case_id": "1"}),
    ("/admin/rules/disable", {"levels": "low"}),
    ("/admin/rules/import-folder", {"path": "/nonexistent"}),
]


@pytest.mark.parametrize("role", [r for r in ROLES if r != "admin"])
@pytest.mark.parametrize(("url", "fields"), ADMIN_FORMS)
def test_admin_forms_refuse_everyone_else(bare: Web, role: str, url: str, fields: dict) -> None:
    filled = {k: v.replace("{role}", role) for k, v in fields.items()}
    r = form(bare.clients[role], url, **filled)
    assert r.status_code == 403, (role, url, r.status_code)
    assert users(bare)[role]["role"] != "admin" and users(bare)["analyst"]["active"]


def test_admin_pages_send_the_anonymous_to_the_login(bare: Web) -> None:
    for page in (*ADMIN_PAGES, "/tokens"):
        r = bare.anonymous.get(page, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), page
    admin = bare.clients["admin"].get("/admin", follow_redirects=False)
    assert admin.status_code == 303 and admin.headers["location"] == "/admin/users"


def test_forms_need_the_csrf_token(bare: Web) -> None:
    admin = bare.clients["admin"]
    body = {"username": "no-csrf", "password": PASSWORD}
    for url in ("/admin/users", "/admin/grants", "/tokens", "/admin/users/disable"):
        assert post_form(admin, url, body).status_code == 403, url
        assert post_form(admin, url, {**body, "csrf_token": "forged"}).status_code == 403, url
    assert "no-csrf" not in users(bare)


def test_create_user_and_the_name_is_inert_everywhere(bare: Web) -> None:
    name = new_user(bare, "read_only", HOSTILE)
    assert users(bare)[name]["role"] == "read_only"
    assert form(bare.clients["admin"], "/admin/grants", username=name, case_id=bare.case_id)
    for page in ("/admin/users", "/admin/grants"):
        text = bare.clients["admin"].get(page).text
        assert HOSTILE not in text and "&lt;img/src=x/onerror=alert(1)&gt;" in text, page
    case = bare.clients["analyst"].post("/api/cases", json={"name": HOSTILE + " case"})
    assert case.status_code == 201, case.text
    grants = bare.clients["admin"].get("/admin/grants").text
    assert HOSTILE not in grants and "&lt;img/src=x/onerror=alert(1)&gt; case (#" in grants
    again = form(bare.clients["admin"], "/admin/users", username=name, password=PASSWORD)
    assert again.status_code == 400 and "already exists" in again.text


def test_disable_from_the_page_ends_session_and_token_at_once(bare: Web) -> None:
    name = new_user(bare)
    client = login(bare.app, name)
    token = client.post("/api/tokens", json={"days": 1, "scope": "read"}).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert bare.anonymous.get("/api/cases", headers=bearer).status_code == 200
    r = form(bare.clients["admin"], "/admin/users/disable", username=name)
    assert r.status_code == 303
    assert client.get("/tokens", follow_redirects=False).headers["location"].startswith("/login")
    assert bare.anonymous.get("/api/cases", headers=bearer).status_code == 401
    page = bare.clients["admin"].get("/admin/users").text
    row = re.search(rf'<tr data-user="{name}">.*?</tr>', page, re.S)
    assert row and "disabled" in row.group(0) and 'data-action="enable"' in row.group(0)
    assert form(bare.clients["admin"], "/admin/users/enable", username=name).status_code == 303
    assert bare.anonymous.get("/api/cases", headers=bearer).status_code == 200


def test_reset_password_is_shown_once_and_must_be_changed(bare: Web) -> None:
    name = new_user(bare)
    r = form(bare.clients["admin"], "/admin/users/reset-password", username=name)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    found = re.search(r'<code id="temporary-password">([^<]+)</code>', r.text)
    assert found
    assert "temporary-password" not in bare.clients["admin"].get("/admin/users").text
    fresh = TestClient(bare.app, base_url="https://testserver")
    body = fresh.post("/api/login", json={"username": name, "password": found.group(1)}).json()
    assert body["must_change_password"] is True


def test_role_change_and_delete_asks_for_the_name(bare: Web) -> None:
    name = new_user(bare)
    admin = bare.clients["admin"]
    assert form(admin, "/admin/users/role", username=name, role="read_only").status_code == 303
    assert users(bare)[name]["role"] == "read_only"
    wrong = form(admin, "/admin/users/delete", username=name, confirm="someone else")
    assert wrong.status_code == 400 and name in users(bare)
    assert form(admin, "/admin/users/delete", username=name, confirm=name).status_code == 303
    assert name not in users(bare)
    gone = form(admin, "/admin/users/disable", username=name)
    assert gone.status_code == 404 and "no user named" in gone.text


def test_the_last_admin_is_kept(bare: Web) -> None:
    r = form(bare.clients["admin"], "/admin/users/disable", username="admin")
    assert r.status_code == 409 and "last active admin" in r.text
    r = form(bare.clients["admin"], "/admin/users/role", username="admin", role="analyst")
    assert r.status_code == 409 and users(bare)["admin"]["role"] == "admin"


def test_grant_and_revoke_from_the_page(bare: Web) -> None:
    outsider = bare.clients["outsider"]
    case = f"/api/cases/{bare.case_id}"
    assert outsider.get(case).status_code == 403
    admin = bare.clients["admin"]
    assert (
        form(admin, "/admin/grants", username="outsider", case_id=bare.case_id).status_code == 303
    )
    assert outsider.get(case).status_code == 200
    listed = admin.get("/api/grants").json()
    assert {"username": "outsider", "case_id": bare.case_id} in [
        {"username": g["username"], "case_id": g["case_id"]} for g in listed
    ]
    assert f'data-user="outsider" data-case="{bare.case_id}"' in admin.get("/admin/grants").text
    r = form(admin, "/admin/grants/revoke", username="outsider", case_id=bare.case_id)
    assert r.status_code == 303 and outsider.get(case).status_code == 403
    unknown = form(admin, "/admin/grants", username="outsider", case_id=999_999)
    assert unknown.status_code == 404 and "no case 999999" in unknown.text


def test_read_only_token_from_the_page_cannot_write(bare: Web) -> None:
    analyst = bare.clients["analyst"]
    r = form(analyst, "/tokens", name=HOSTILE, days=2, scope="read")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    token = re.search(r'<code id="token-value">([^<]+)</code>', r.text)
    assert token and HOSTILE not in r.text
    bearer = {"Authorization": f"Bearer {token.group(1)}"}
    assert bare.anonymous.get("/api/cases", headers=bearer).status_code == 200
    write = bare.anonymous.post("/api/cases", json={"name": "by token"}, headers=bearer)
    assert write.status_code == 403 and "read-only token" in write.json()["detail"]
    mine = analyst.get("/api/tokens").json()
    token_id = next(t["id"] for t in mine if t["name"] == HOSTILE)
    assert f'data-token="{token_id}"' in bare.clients["admin"].get("/tokens").text
    assert f'data-token="{token_id}"' not in bare.clients["reader"].get("/tokens").text
    other = form(bare.clients["reader"], f"/tokens/{token_id}/revoke")
    assert other.status_code == 404  # not the reader's token
    assert form(analyst, f"/tokens/{token_id}/revoke").status_code == 303
    assert bare.anonymous.get("/api/cases", headers=bearer).status_code == 401


@pytest.mark.parametrize(
    ("url", "fields", "status"),
    [
        ("/tokens", {"days": "abc"}, 422),
        ("/tokens", {"days": "-1"}, 422),
        ("/tokens", {"days": "1", "scope": "root"}, 422),
        ("/tokens", {"days": "100000"}, 422),
        ("/tokens", {"days": "1000", "name": "too long"}, 400),  # over CASESCOPE_TOKEN_MAX_DAYS
        ("/tokens/0/revoke", {}, 422),
        ("/tokens/abc/revoke", {}, 422),
        ("/admin/users", {"username": "x y", "password": PASSWORD}, 400),
        ("/admin/users", {"username": "short-pw", "password": "x"}, 400),
        ("/admin/users", {"username": "r", "password": PASSWORD, "role": "god"}, 422),
        ("/admin/users/explode", {"username": "analyst"}, 422),
        ("/admin/users/role", {"username": "analyst", "role": "god"}, 422),
        ("/admin/users/role", {"username": "analyst"}, 400),
        ("/admin/grants", {"username": "analyst", "case_id": "abc"}, 422),
        ("/admin/grants", {"username": "analyst", "case_id": "0"}, 422),
        ("/admin/grants", {"username": "nobody-here", "case_id": "1"}, 404),
    ],
)
def test_bad_form_input_is_a_clear_4xx(bare: Web, url: str, fields: dict, status: int) -> None:
    r = form(bare.clients["admin"], url, **fields)
    assert r.status_code == status, (url, fields, r.status_code, r.text[:300])

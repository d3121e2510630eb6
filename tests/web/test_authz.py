"""Each role against each endpoint: read-only users cannot change anything; users without
access to a case get 403 for everything in it; admins only for users and the audit log."""

from __future__ import annotations

import pytest

from tests.web.conftest import ROLES, Web

# (method, path, json body, roles allowed)
ENDPOINTS = [
    ("GET", "/api/cases/{case}", None, {"admin", "analyst", "reader"}),
    ("GET", "/api/cases/{case}/files", None, {"admin", "analyst", "reader"}),
    ("GET", "/api/cases/{case}/events", None, {"admin", "analyst", "reader"}),
    ("GET", "/api/cases/{case}/export", None, {"admin", "analyst", "reader"}),
    ("GET", "/api/cases/{case}/detections", None, {"admin", "analyst", "reader"}),
    ("GET", "/api/cases/{case}/detections/matrix", None, {"admin", "analyst", "reader"}),
    ("GET", "/api/cases/{case}/detections/timeline", None, {"admin", "analyst", "reader"}),
    ("GET", "/api/cases/{case}/detections/navigator", None, {"admin", "analyst", "reader"}),
    ("GET", "/api/cases/{case}/ioc-hits", None, {"admin", "analyst", "reader"}),
    ("GET", "/api/cases/{case}/exclusions", None, {"admin", "analyst", "reader"}),
    ("POST", "/api/cases/{case}/exclusions", {"rule_uid": "none"}, {"admin", "analyst"}),
    ("DELETE", "/api/cases/{case}/exclusions/999999", None, {"admin", "analyst"}),
    ("GET", "/api/cases/{case}/progress", None, {"admin", "analyst", "reader"}),
    ("POST", "/api/cases/{case}/files/reprocess", {"file_ids": [-1]}, {"admin", "analyst"}),
    ("POST", "/api/cases/{case}/files/retry", {"file_ids": [-1]}, {"admin", "analyst"}),
    ("POST", "/api/cases/{case}/files/import", {"path": "/nonexistent"}, {"admin"}),
    ("POST", "/api/cases/{case}/events/1/0/marks", {"kind": "star"}, {"admin", "analyst"}),
    ("DELETE", "/api/cases/{case}/events/1/0/marks", {"kind": "star"}, {"admin", "analyst"}),
    (
        "POST",
        "/api/cases/{case}/marks/bulk",
        {"action": "add", "kind": "star", "events": [{"file_id": 1, "seq": 0}]},
        {"admin", "analyst"},
    ),
    ("GET", "/api/cases/{case}/tags", None, {"admin", "analyst", "reader"}),
    ("GET", "/api/cases/{case}/events/1/0/notes", None, {"admin", "analyst", "reader"}),
    ("POST", "/api/cases/{case}/events/1/0/notes", {"text": "n"}, {"admin", "analyst"}),
    ("PUT", "/api/cases/{case}/notes/999999", {"text": "n"}, {"admin", "analyst"}),
    ("DELETE", "/api/cases/{case}/notes/999999", None, {"admin", "analyst"}),
    ("POST", "/api/cases", {"name": "authz-{role}"}, {"admin", "analyst", "outsider"}),
    ("GET", "/api/users", None, {"admin"}),
    ("POST", "/api/users", {"username": "u-{role}", "password": "x" * 12}, {"admin"}),
    ("GET", "/api/audit", None, {"admin"}),
    ("GET", "/api/system", None, set(ROLES)),
]
PAGES = [
    "/cases/{case}",
    "/cases/{case}/evidence",
    "/cases/{case}/search?q=",
    "/cases/{case}/detections",
    "/cases/{case}/detections/timeline",
    "/cases/{case}/tags",
]


def _fill(value: object, case_id: int, role: str) -> object:
    if isinstance(value, str):
        return value.replace("{case}", str(case_id)).replace("{role}", role)
    if isinstance(value, dict):
        return {k: _fill(v, case_id, role) for k, v in value.items()}
    return value


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path", "body", "allowed"), ENDPOINTS)
def test_role_matrix(web: Web, role: str, method: str, path: str, body, allowed) -> None:  # type: ignore[no-untyped-def]
    client = web.clients[role]
    r = client.request(method, _fill(path, web.case_id, role), json=_fill(body, web.case_id, role))
    if role in allowed:
        assert r.status_code not in (401, 403), (role, path, r.status_code, r.text)
    else:
        assert r.status_code == 403, (role, path, r.status_code, r.text)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES)
def test_case_pages(web: Web, role: str, page: str) -> None:
    r = web.clients[role].get(_fill(page, web.case_id, role))
    assert r.status_code == (403 if role == "outsider" else 200)


def test_anonymous_gets_401_or_the_login_page(web: Web) -> None:
    assert web.anonymous.get(f"/api/cases/{web.case_id}/events").status_code == 401
    r = web.anonymous.get(f"/cases/{web.case_id}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/login?next=%2Fcases%2F{web.case_id}"
    assert web.anonymous.get("/", follow_redirects=False).headers["location"] == "/login"


def test_reprocess_of_a_file_not_in_the_case_is_404(web: Web) -> None:
    r = web.clients["analyst"].post(
        f"/api/cases/{web.case_id}/files/reprocess", json={"file_ids": [999_999]}
    )
    assert r.status_code == 404 and r.json()["detail"] == "no file 999999 in this case"


def test_reprocess_with_a_field_map_is_checked(web: Web) -> None:
    url = f"/api/cases/{web.case_id}/files/reprocess"
    analyst = web.clients["analyst"]
    r = analyst.post(url, json={"operation": "reindex", "field_map": {"when": "EventTime"}})
    assert r.status_code == 400 and "unknown column(s) when" in r.json()["detail"]
    r = analyst.post(url, json={"operation": "sigma_only", "field_map": {"ts": "EventTime"}})
    assert r.status_code == 400 and "only when files are parsed again" in r.json()["detail"]

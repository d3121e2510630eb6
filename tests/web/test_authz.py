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
    ("GET", "/api/cases/{case}/story", None, {"admin", "analyst", "reader"}),
    ("GET", "/api/cases/{case}/report?format=md", None, {"admin", "analyst", "reader"}),
    ("POST", "/api/cases/{case}/story/texts", {"text": "authz"}, {"admin", "analyst"}),
    (
        "POST",
        "/api/cases/{case}/story/events",
        {"events": [{"file_id": 1, "seq": 0}]},
        {"admin", "analyst"},
    ),
    ("POST", "/api/cases/{case}/story/marked", {"mark": "star"}, {"admin", "analyst"}),
    ("PATCH", "/api/cases/{case}/story/items/999999", {"text": "x"}, {"admin", "analyst"}),
    ("DELETE", "/api/cases/{case}/story/items/999999", None, {"admin", "analyst"}),
    ("PUT", "/api/cases/{case}/story/order", {"ids": []}, {"admin", "analyst"}),
    ("GET", "/api/cases/{case}/saved-searches", None, {"admin", "analyst", "reader"}),
    (
        "PATCH",
        "/api/cases/{case}/saved-searches/999999",
        {"name": "x"},
        {"admin", "analyst", "reader"},
    ),
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
    ("GET", "/api/audit/page?view=all", None, {"admin"}),
    ("GET", "/api/cases/{case}/files/page?sort=size", None, {"admin", "analyst", "reader"}),
    ("GET", "/api/system", None, set(ROLES)),
    ("GET", "/api/grants", None, {"admin"}),
    ("GET", "/api/tokens", None, set(ROLES)),
    ("GET", "/api/rules/sets", None, {"admin"}),
    ("GET", "/api/rules", None, {"admin"}),
    ("POST", "/api/rules/disable", {"ids": ["no-such-rule"]}, {"admin"}),
    ("POST", "/api/rules/import-folder", {"path": "/nonexistent"}, {"admin"}),
    ("GET", "/api/cases/{case}/settings", None, {"admin", "analyst", "reader"}),
    (
        "GET",
        "/api/cases/{case}/files/rows?first_id=1&last_id=9",
        None,
        {"admin", "analyst", "reader"},
    ),
    # the analyst created the case: its owner
    ("PATCH", "/api/cases/{case}/settings", {"description": "d"}, {"admin", "analyst"}),
    ("GET", "/api/cases/{case}/deletion", None, {"admin"}),
    ("DELETE", "/api/cases/{case}?confirm=not+its+name", None, {"admin"}),
]
PAGES = [
    "/cases/{case}",
    "/cases/{case}/evidence",
    "/cases/{case}/evidence?status=completed&sort=name&order=desc&page=1",
    "/cases/{case}/iocs",
    "/cases/{case}/search?q=",
    "/cases/{case}/detections",
    "/cases/{case}/detections/timeline",
    "/cases/{case}/story",
    "/cases/{case}/settings",
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


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", ["/audit", "/audit?view=steps", "/system", "/docs"])
def test_site_pages(web: Web, role: str, page: str) -> None:
    """The audit log is for admins (a 403 page for others); System and /docs for everyone."""
    r = web.clients[role].get(page, headers={"accept": "text/html"})
    forbidden = page.startswith("/audit") and role != "admin"
    assert r.status_code == (403 if forbidden else 200), (role, page, r.status_code)
    assert r.headers["content-type"].startswith("text/html")


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

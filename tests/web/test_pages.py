"""Pages render attacker-controlled event data escaped (XSS, javascript: URLs, bidi, NUL)."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import NUL, REORDERING_TEXT, XSS, Web, wait_searchable


def _xss_event(web: Web) -> dict:
    client = web.clients["analyst"]
    rows = client.get(f"/api/cases/{web.case_id}/events", params={"q": '"onerror"'}).json()["rows"]
    assert rows, "the NDJSON event with the payload was not indexed"
    return rows[0]


def _assert_safe(html: str) -> None:
    assert "<img src=x onerror" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert not re.search(r"""(href|src)\s*=\s*["']?\s*javascript:""", html, re.I)
    assert "\u202e" not in html and "[U+202E]" in html
    assert "\x00" not in html and NUL not in html


def test_search_page_escapes_event_fields(web: Web) -> None:
    _xss_event(web)
    html = (
        web.clients["analyst"]
        .get(f"/cases/{web.case_id}/search", params={"q": '"onerror"', "columns": "Url,FileName"})
        .text
    )
    _assert_safe(html)
    assert XSS not in html


def test_event_page_escapes_fields_and_raw(web: Web) -> None:
    event = _xss_event(web)
    html = (
        web.clients["analyst"]
        .get(f"/cases/{web.case_id}/events/{event['file_id']}/{event['seq']}")
        .text
    )
    _assert_safe(html)
    assert "javascript:alert(1)" in html  # shown as text, never as a link
    assert not [c for c in "\u200f\u2028\u2067" if c in html]
    assert "left[U+200F]right[U+2028]next[U+2067]end" in html
    assert REORDERING_TEXT not in html


def test_pages_send_a_strict_content_security_policy(web: Web) -> None:
    r = web.clients["reader"].get("/")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_page_forms_carry_the_csrf_token_and_reject_without(web: Web) -> None:
    client = web.clients["analyst"]
    html = client.get("/").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token
    saved = client.headers.pop("X-CSRF-Token")
    try:
        refused = client.post("/cases", data={"name": "form case"}, follow_redirects=False)
        assert refused.status_code == 403
        ok = client.post(
            "/cases",
            data={"name": "form case", "csrf_token": token.group(1)},
            follow_redirects=False,
        )
        assert ok.status_code == 303
    finally:
        client.headers["X-CSRF-Token"] = saved


def test_login_form_flow(web: Web) -> None:
    client = TestClient(web.app, base_url="https://testserver")
    page = client.get("/login").text
    login_csrf = re.search(r'name="login_csrf" value="([^"]+)"', page).group(1)
    r = client.post(
        "/login",
        data={"username": "reader", "password": "correct horse battery", "login_csrf": login_csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "web case" in client.get("/").text


def _log_in_from(client: TestClient, url: str) -> str:
    """Open `url` logged out, log in on the form it leads to; where the login sends you."""
    login = client.get(url)  # follows the redirect to the login form
    login_csrf = re.search(r'name="login_csrf" value="([^"]+)"', login.text).group(1)
    nxt = re.search(r'name="next" value="([^"]*)"', login.text)
    form = {"username": "reader", "password": "correct horse battery", "login_csrf": login_csrf}
    if nxt:
        form["next"] = html.unescape(nxt.group(1))
    r = client.post("/login", data=form, follow_redirects=False)
    return r.headers["location"]


def test_a_shared_link_survives_the_login(web: Web) -> None:
    link = f"/cases/{web.case_id}/search?q=mimikatz&filter=EventID%3A1"
    client = TestClient(web.app, base_url="https://testserver")
    assert _log_in_from(client, link) == link


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x"]
)
def test_the_login_never_sends_the_browser_to_another_site(web: Web, target: str) -> None:
    client = TestClient(web.app, base_url="https://testserver")
    page = client.get("/login", params={"next": target}).text
    login_csrf = re.search(r'name="login_csrf" value="([^"]+)"', page).group(1)
    form = {"username": "reader", "password": "correct horse battery", "login_csrf": login_csrf}
    r = client.post("/login", data={**form, "next": target}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_evidence_page_and_api_say_what_could_not_be_read(web: Web) -> None:
    """A file that kept its readable events: its warnings are shown, not only stored."""
    client = web.clients["analyst"]
    lines = b'{"EventTime": "2024-05-02T10:00:00Z", "Message": "kept"}\n' + XSS.encode() + b"\n"
    upload = [("files", ("half-good.ndjson", lines))]
    body = client.post(f"/api/cases/{web.case_id}/files/upload", files=upload).json()
    wait_searchable(client, web.case_id, body["first_id"], body["last_id"])
    files = client.get(f"/api/cases/{web.case_id}/files").json()
    (row,) = [f for f in files if f["name"].endswith("half-good.ndjson")]
    assert row["status"] == "completed" and row["event_count"] == 1
    assert "line 2" in row["warnings"]
    assert all(len(f["sha256"]) == 64 for f in files)
    html = client.get(f"/cases/{web.case_id}/evidence").text
    assert 'class="warnings"' in html and "line 2" in html
    assert "<img src=x onerror" not in html


def test_the_favicon_is_served_from_the_app(web: Web) -> None:
    moved = web.anonymous.get("/favicon.ico", follow_redirects=False)
    assert moved.status_code == 301 and moved.headers["location"] == "/static/favicon.svg"
    icon = web.anonymous.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.text.startswith("<svg")
    assert '<link rel="icon" href="/static/favicon.svg"' in web.clients["reader"].get("/").text


def test_a_completed_file_not_yet_in_the_index_reads_indexing(web: Web) -> None:
    """Parsed is not searchable: until the index owner loads a file's events, the evidence
    page and its live rows say "indexing" (an analyst who searched then saw 0 events)."""
    from casescope.model.enums import FileStatus, FileType, IndexState
    from casescope.model.tables import EvidenceFile

    with web.db.session() as session:
        row = EvidenceFile(
            case_id=web.case_id,
            sha256="ab" * 32,
            size_bytes=10,
            file_type=FileType.NDJSON,
            original_path="upload:parsed.ndjson",
            stored_path="/nonexistent/parsed.ndjson",
            status=FileStatus.COMPLETED,
            index_state=IndexState.PENDING,  # no segment: the loader leaves it alone
        )
        session.add(row)
        session.flush()
        file_id = row.id
    client = web.clients["analyst"]
    page = client.get(f"/cases/{web.case_id}/evidence").text
    assert '<td class="status status-indexing">indexing</td>' in page
    (api_row,) = client.get(
        f"/api/cases/{web.case_id}/files/rows", params={"first_id": file_id, "last_id": file_id}
    ).json()
    assert (api_row["status"], api_row["index_state"]) == ("completed", "pending")
    with web.db.session() as session:
        session.get(EvidenceFile, file_id).index_state = IndexState.LOADED
    page = client.get(f"/cases/{web.case_id}/evidence").text
    assert '<td class="status status-completed">completed</td>' in page

"""Pages that read well (issue 21, items 3, 4 and 7): errors inside the layout, /docs under
the CSP, the evidence table and the audit log paged, sorted and filtered, files refused at
intake shown as rejected, dashboard levels in order and linked, IOCs in the navigation, a
malformed IPv4 IOC refused, the System page as tables.

One real app: two attack-sample EVTX files, an NDJSON file that three small rules of three
levels match, and two files that are not evidence (rejected at intake)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from casescope.store.rulesets import import_rules
from tests.web.conftest import XSS, Web, open_web, rule_folder, sample_uploads

HTML = {"accept": "text/html,application/xhtml+xml"}
SAMPLES = (
    "Lateral Movement/LM_Remote_Service02_7045.evtx",
    "Credential Access/kerberos_pwd_spray_4771.evtx",
)
RULES = {
    f"{level}.yml": f"""\
        title: {level} rule
        id: 7a1c0000-0000-4000-8000-0000000000{n:02d}
        status: test
        logsource: {{product: windows}}
        detection:
          selection: {{Message|contains: '{word}'}}
          condition: selection
        level: {level}
        """
    for n, (level, word) in enumerate((("low", "alpha"), ("critical", "beta"), ("medium", "gamma")))
}
NOT_EVIDENCE = (("README.md", b"# notes\nnot a log\n"), ("LICENSE.txt", b"MIT licence text\n"))


def _ndjson() -> bytes:
    lines = [
        {"EventTime": f"2024-05-01T10:00:0{i}Z", "EventID": 1, "Message": word}
        for i, word in enumerate(("alpha", "beta", "beta", "gamma", "gamma", "gamma"))
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, attack_samples: Path) -> Iterator[Web]:
    home = tmp_path_factory.mktemp("friendly")
    files = [*sample_uploads(attack_samples, SAMPLES), ("levels.ndjson", _ndjson())]

    def prepare(web: Web) -> None:
        import_rules(web.db, web.settings, rule_folder(home / "rules", RULES), "levels")
        r = web.clients["analyst"].post(
            f"/api/cases/{web.case_id}/files/upload",
            files=[("files", item) for item in NOT_EVIDENCE],
        )
        assert r.status_code == 200, r.text

    with open_web(home, files, case_name="friendly case", prepare=prepare) as app:
        yield app


# --- item 3: errors as pages, /docs ------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "path", "status", "says"),
    [
        ("analyst", "/cases/999999", 404, "no case 999999"),
        ("outsider", "/cases/{case}", 403, "no access to this case"),
        ("analyst", "/cases/not-a-number", 422, "case_id"),
        ("reader", "/audit", 403, "admins only"),
        ("analyst", "/no/such/page", 404, "Not Found"),
        ("analyst", "/cases/{case}/events/999999/0", 404, ""),
    ],
)
def test_a_browser_gets_errors_as_pages_inside_the_layout(
    web: Web, role: str, path: str, status: int, says: str
) -> None:
    r = web.clients[role].get(path.replace("{case}", str(web.case_id)), headers=HTML)
    assert r.status_code == status
    assert r.headers["content-type"].startswith("text/html")
    assert 'id="error-page"' in r.text and f"<h1>{status} ·" in r.text
    assert says in r.text
    assert '<a href="/">Cases</a>' in r.text  # the navigation of a logged-in user
    assert "default-src 'self'" in r.headers["content-security-policy"]


def test_the_api_and_scripts_still_get_json_errors(web: Web) -> None:
    analyst = web.clients["analyst"]
    r = analyst.get("/api/cases/999999", headers=HTML)  # JSON under /api/ whatever it accepts
    assert r.status_code == 404 and r.json() == {"detail": "no case 999999"}
    r = analyst.get("/cases/999999")  # fetch() and curl send Accept: */*
    assert r.status_code == 404 and r.json() == {"detail": "no case 999999"}
    r = analyst.get("/api/cases/abc/files", headers=HTML)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "case_id"]


def test_error_pages_keep_user_text_inert(web: Web) -> None:
    r = web.clients["admin"].get("/audit", params={"since": XSS}, headers=HTML)
    assert r.status_code == 400 and "not an ISO 8601 time" in r.text
    assert XSS not in r.text and "&lt;img src=x onerror=alert(1)&gt;" in r.text


def test_filter_values_are_inert_where_the_pages_repeat_them(web: Web) -> None:
    escaped = "&lt;img src=x onerror=alert(1)&gt;"
    evidence = web.clients["reader"].get(f"/cases/{web.case_id}/evidence", params={"name": XSS})
    assert evidence.status_code == 200 and XSS not in evidence.text and escaped in evidence.text
    audit = web.clients["admin"].get("/audit", params={"actor": XSS, "view": "all"})
    assert audit.status_code == 200 and XSS not in audit.text and escaped in audit.text


def test_an_anonymous_browser_is_still_sent_to_the_login(web: Web) -> None:
    r = web.anonymous.get(f"/cases/{web.case_id}", headers=HTML, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    r = web.anonymous.get("/no/such/page", headers=HTML)
    assert r.status_code == 404 and '<a href="/login">Log in</a>' in r.text


def test_a_server_failure_is_a_page_without_the_traceback(web: Web) -> None:
    def boom() -> None:
        raise RuntimeError("secret internals")

    web.app.add_api_route("/test-boom", boom)
    client = TestClient(web.app, base_url="https://testserver", raise_server_exceptions=False)
    client.cookies = web.clients["analyst"].cookies
    page = client.get("/test-boom", headers=HTML)
    assert page.status_code == 500 and "500 · The server failed" in page.text
    assert "secret internals" not in page.text and "Traceback" not in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    api = client.get("/test-boom")
    assert api.status_code == 500 and api.json() == {"detail": "internal server error"}


def test_docs_are_served_by_the_app_under_the_csp(web: Web) -> None:
    reader = web.clients["reader"]
    page = reader.get("/docs")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S)
    assert scripts and all(body.strip() == "" for _, body in scripts)  # no inline script
    assert all('src="/' in attrs for attrs, _ in scripts)  # and nothing from another site
    bundle = reader.get("/static/vendor/swagger-ui/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and "javascript" in bundle.headers["content-type"]
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page.text
    assert reader.get("/static/vendor/swagger-ui/swagger-ui.css").status_code == 200
    assert reader.get("/redoc", follow_redirects=False).headers["location"] == "/docs"


# --- item 4: the evidence table ------------------------------------------------------------


def _page(web: Web, **params: object) -> dict:
    r = web.clients["reader"].get(f"/api/cases/{web.case_id}/files/page", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_file_table_is_paged(web: Web) -> None:
    first, second = _page(web, per_page=2), _page(web, per_page=2, page=2)
    assert first["total"] == second["total"] == 5 and first["pages"] == 3
    assert [f["id"] for f in first["files"]] < [f["id"] for f in second["files"]]
    assert _page(web, per_page=2, page=9)["files"] == []


def test_the_file_table_sorts_and_filters(web: Web) -> None:
    sizes = [f["size_bytes"] for f in _page(web, sort="size", order="desc")["files"]]
    assert sizes == sorted(sizes, reverse=True)
    rejected = _page(web, status="rejected")
    assert {f["name"] for f in rejected["files"]} == {"upload:README.md", "upload:LICENSE.txt"}
    assert rejected["by_status"] == {"completed": 3, "rejected": 2}
    assert [f["name"] for f in _page(web, name="readME")["files"]] == ["upload:README.md"]
    assert {f["file_type"] for f in _page(web, type="evtx")["files"]} == {"evtx"}
    assert _page(web, name="%")["total"] == 0  # LIKE's wildcards are taken literally


@pytest.mark.parametrize(
    "query", ["sort=nope", "status=broken", "type=pdf", "page=0", "per_page=100000", "order=up"]
)
def test_bad_table_parameters_are_422(web: Web, query: str) -> None:
    api = web.clients["reader"].get(f"/api/cases/{web.case_id}/files/page?{query}")
    assert api.status_code == 422
    page = web.clients["reader"].get(f"/cases/{web.case_id}/evidence?{query}", headers=HTML)
    assert page.status_code == 422 and 'id="error-page"' in page.text


def test_the_filter_forms_empty_choices_mean_any(web: Web) -> None:
    """What the pages' GET forms send when nothing is chosen: every parameter, empty."""
    reader, admin = web.clients["reader"], web.clients["admin"]
    evidence = reader.get(
        f"/cases/{web.case_id}/evidence?name=&status=&type=&per_page=50&sort=id&order=asc"
    )
    assert evidence.status_code == 200 and evidence.text.count("<tr data-id=") == 5
    assert _page(web, status="", type="")["total"] == 5
    audit = admin.get("/audit?view=all&action=&actor=&case_id=&since=&until=&per_page=50")
    assert audit.status_code == 200 and "No audit rows match." not in audit.text
    bad = admin.get("/api/audit/page?case_id=abc")
    assert bad.status_code == 400 and "case_id must be a number" in bad.json()["detail"]


def test_the_evidence_page_pages_sorts_and_shows_sizes(web: Web) -> None:
    url = f"/cases/{web.case_id}/evidence?status=completed&per_page=2&sort=size&order=desc"
    page = web.clients["reader"].get(url).text
    assert "files 1–2 of 3 · page 1 of 2" in page
    assert re.search(r'class="size"[^>]*>\d+(\.\d)? (KB|MB)<', page)  # not raw bytes
    nxt = re.search(r'<a rel="next" href="([^"]+)"', page)
    assert nxt and "status=completed" in nxt.group(1) and "page=2" in nxt.group(1)
    assert 'aria-sort="descending"><a href="' in page  # the size column, flips when clicked


# --- item 7: rejected, dashboard, IOCs, System ------------------------------------------


def test_files_rejected_at_intake_are_not_failures(web: Web) -> None:
    analyst = web.clients["analyst"]
    [case] = [c for c in analyst.get("/api/cases").json() if c["id"] == web.case_id]
    assert (case["failed"], case["rejected"]) == (0, 2)
    board = analyst.get(f"/api/cases/{web.case_id}").json()
    assert board["files_by_status"] == {"completed": 3, "rejected": 2}
    cases_page = analyst.get("/").text
    assert '<td class="failed">0</td><td class="rejected">2</td>' in cases_page
    evidence = analyst.get(f"/cases/{web.case_id}/evidence?status=rejected").text
    assert evidence.count("status-rejected") == 2 and "not recognised as evidence" in evidence
    retried = analyst.post(f"/api/cases/{web.case_id}/files/retry", json={})
    assert retried.status_code == 200 and retried.json()["queued"] == 0  # nothing to retry


def test_dashboard_levels_are_in_order_and_link_to_their_detections(web: Web) -> None:
    board = web.clients["analyst"].get(f"/api/cases/{web.case_id}").json()
    assert list(board["detections_by_level"].items()) == [
        ("critical", 2),
        ("medium", 3),
        ("low", 1),
    ]
    page = web.clients["analyst"].get(f"/cases/{web.case_id}").text
    links = re.findall(r'href="/cases/\d+/detections\?levels=(\w+)"', page)
    assert links == ["critical", "medium", "low"]
    assert f'href="/cases/{web.case_id}/evidence?status=rejected"' in page


def test_job_times_carry_their_zone(web: Web) -> None:
    page = web.clients["analyst"].get(f"/cases/{web.case_id}/jobs").text
    assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</td>", page)


def test_iocs_are_in_the_case_navigation(web: Web) -> None:
    page = web.clients["reader"].get(f"/cases/{web.case_id}/evidence").text
    nav = page.split("<nav>")[1].split("</nav>")[0]
    assert f'<a href="/cases/{web.case_id}/iocs">IOCs</a>' in nav


def test_a_malformed_ipv4_ioc_is_refused_unless_typed(web: Web) -> None:
    analyst, url = web.clients["analyst"], f"/api/cases/{web.case_id}/iocs"
    r = analyst.post(url, json={"values": ["999.1.1.1"]})
    assert r.status_code == 400 and "looks like an IPv4 address" in r.json()["detail"]
    page = analyst.post(
        f"/cases/{web.case_id}/iocs/add", data={"values": "999.1.1.1"}, headers=HTML
    )
    assert page.status_code == 400 and "looks like an IPv4 address" in page.text
    r = analyst.post(url, json={"values": ["999.1.1.1"], "type": "string"})
    assert r.status_code == 200 and len(r.json()["added"]) == 1


def test_the_system_page_shows_the_queue_and_workers_as_tables(web: Web) -> None:
    admin = web.clients["admin"].get("/system").text
    queue = admin.split('id="system-queue"')[1].split("</table>")[0]
    assert "<th>state</th><th>jobs</th>" in queue and "<td>done</td>" in queue
    assert "{" not in queue  # not a Python dict
    assert 'id="system-workers"' in admin or "No workers running." in admin
    outsider = web.clients["outsider"].get("/system").text
    assert "No files of your cases are being processed." in outsider
    assert "Job queue of your cases" in outsider and "<td>done</td><td>0</td>" in outsider


# --- item 4: the audit log ---------------------------------------------------------------


def _audit(web: Web, **params: object) -> dict:
    r = web.clients["admin"].get("/api/audit/page", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_audit_log_keeps_steps_apart_from_peoples_actions(web: Web) -> None:
    actions, steps = _audit(web), _audit(web, view="steps", per_page=500)
    assert actions["rows"] and {row["kind"] for row in actions["rows"]} == {"action"}
    assert steps["rows"] and {row["action"][:5] for row in steps["rows"]} == {"step."}
    everything = _audit(web, view="all")
    assert everything["total"] == sum(
        n for view, n in everything["by_view"].items() if view != "all"
    )
    assert everything["total"] > actions["total"] + steps["total"] - 1


def test_logins_failed_logins_and_logouts_are_audited(web: Web) -> None:
    assert (
        web.anonymous.post(
            "/api/login", json={"username": "reader", "password": "wrong password!"}
        ).status_code
        == 401
    )
    visitor = TestClient(web.app, base_url="https://testserver")
    r = visitor.post("/api/login", json={"username": "reader", "password": "correct horse battery"})
    visitor.post("/api/logout", headers={"X-CSRF-Token": r.json()["csrf_token"]})
    for action in ("user.login", "user.logout"):
        rows = _audit(web, action=action, actor="reader")["rows"]
        assert rows and all(row["actor"] == "web:reader" for row in rows), action
    [failed] = _audit(web, action="user.login_failed")["rows"]
    assert failed["actor"] == "web:anonymous" and "user=reader" in failed["detail"]


def test_the_audit_log_filters_by_user_case_and_time(web: Web) -> None:
    mine = _audit(web, actor="ANALYST", view="all")["rows"]
    assert mine and all("analyst" in row["actor"] for row in mine)
    in_case = _audit(web, case_id=web.case_id, view="all")["rows"]
    assert in_case and all(row["case_id"] == web.case_id for row in in_case)
    assert _audit(web, since="2999-01-01T00:00:00Z", view="all")["total"] == 0
    assert _audit(web, until="2000-01-01T00:00:00", view="all")["total"] == 0
    oldest = _audit(web, view="all", sort="at", order="asc", per_page=1)["rows"][0]
    assert oldest["id"] == min(row["id"] for row in _audit(web, view="all", per_page=500)["rows"])
    bad = web.clients["admin"].get("/api/audit/page?action=nope.nope")
    assert bad.status_code == 400 and "action must be one of" in bad.json()["detail"]
    for edge in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "2024-13-01"):
        r = web.clients["admin"].get("/api/audit/page", params={"since": edge})
        assert r.status_code == 400 and "not an ISO 8601 time" in r.json()["detail"], edge


def test_tag_labels_are_in_the_audit_rows(web: Web) -> None:
    analyst = web.clients["analyst"]
    event = analyst.get(f"/api/cases/{web.case_id}/events?limit=1").json()["rows"][0]
    url = f"/api/cases/{web.case_id}/events/{event['file_id']}/{event['seq']}/marks"
    assert analyst.post(url, json={"kind": "tag", "label": "lateral-movement"}).status_code == 200
    rows = _audit(web, action="event.tag")["rows"]
    assert json.loads(rows[0]["detail"])["label"] == "lateral-movement"


def test_the_audit_page_has_headers_zoned_times_tabs_and_a_pager(web: Web) -> None:
    admin = web.clients["admin"]
    assert admin.put("/api/me/timezone", json={"timezone": "Europe/Berlin"}).status_code == 200
    try:
        page = admin.get("/audit?view=all&per_page=5").text
        assert "time (Europe/Berlin)" in page and "<th>detail</th>" in page
        times = re.findall(r'<td class="at">([^<]+)</td>', page)
        assert len(times) == 5 and all(t.endswith((" CET", " CEST")) for t in times)
        assert 'aria-current="page">All (' in page and "Pipeline steps (" in page
        assert re.search(r'<a rel="next" href="/audit\?[^"]*view=all[^"]*page=2', page)
        # a time typed in the form is one of the viewer's zone (Berlin: 1-2 hours ahead)
        newest = _audit(web, view="all", per_page=1)["rows"][0]
        at = datetime.fromisoformat(newest["at"]).replace(tzinfo=UTC)
        typed = (at - timedelta(seconds=1)).astimezone(ZoneInfo("Europe/Berlin"))
        since = typed.strftime("%Y-%m-%dT%H:%M:%S")
        page = admin.get(f"/audit?view=all&per_page=500&since={since}").text
        assert f'data-id="{newest["id"]}"' in page  # read as UTC, it would be an hour later
        assert f'value="{since}"' in page  # the form keeps what was typed
    finally:
        admin.put("/api/me/timezone", json={"timezone": "UTC"})

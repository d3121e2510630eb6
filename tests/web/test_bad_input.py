"""Malformed input is a 4xx with a message, never a 500: each case found by review or by the
fuzz test (tests/web/test_fuzz.py) has its own test here."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from tests.web.conftest import PASSWORD, Web, login

NON_ASCII = "tökén-\u00e9\u4e2d"
#: The same as bytes on the wire (UTF-8; the server reads header bytes as Latin-1).
RAW = NON_ASCII.encode()


def _detail(r) -> str:  # type: ignore[no-untyped-def]
    body = r.json()
    return str(body["detail"])


def test_unknown_detection_level_is_400(bare: Web) -> None:
    r = bare.clients["reader"].get(f"/api/cases/{bare.case_id}/detections", params={"level": "foo"})
    assert r.status_code == 400 and "level must be one of" in _detail(r)
    ok = bare.clients["reader"].get(f"/api/cases/{bare.case_id}/detections?level=high")
    assert ok.status_code == 200


def test_unknown_audit_action_is_400_with_the_choices(bare: Web) -> None:
    r = bare.clients["admin"].get("/api/audit", params={"action": "intake.rejected"})
    assert r.status_code == 400 and "action must be one of" in _detail(r)
    assert "intake.refused" in _detail(r) and "'intake.rejected'" in _detail(r)
    ok = bare.clients["admin"].get("/api/audit", params={"action": "user.login"})
    assert ok.status_code == 200 and {a["action"] for a in ok.json()} == {"user.login"}


def test_non_ascii_csrf_token_is_403(bare: Web) -> None:
    client = login(bare.app, "analyst")
    del client.headers["X-CSRF-Token"]
    r = client.post("/api/cases", json={"name": "csrf"}, headers={"X-CSRF-Token": RAW})
    assert r.status_code == 403 and "CSRF" in _detail(r)
    form = login(bare.app, "analyst")
    del form.headers["X-CSRF-Token"]
    r = form.post("/cases", data={"name": "csrf form", "csrf_token": NON_ASCII})
    assert r.status_code == 403


def test_non_ascii_bearer_token_and_cookie_are_401(bare: Web) -> None:
    r = bare.anonymous.get("/api/cases", headers={"Authorization": b"Bearer cs_" + RAW})
    assert r.status_code == 401
    cookie = {"Cookie": b"casescope_session=" + RAW}
    assert bare.anonymous.get("/api/cases", headers=cookie).status_code == 401


def test_non_ascii_login_csrf_is_403(bare: Web) -> None:
    client = TestClient(bare.app, base_url="https://testserver")
    client.get("/login")
    r = client.post(
        "/login", data={"username": "admin", "password": PASSWORD, "login_csrf": NON_ASCII}
    )
    assert r.status_code == 403


def test_huge_last_event_id_is_400(bare: Web) -> None:
    url = f"/api/cases/{bare.case_id}/operations/1/events"
    # 5,000 digits; superscript two and one (Latin-1 bytes: `isdigit` but not `int`)
    for value in (b"9" * 5000, b"\xb2", b"1\xb9"):
        r = bare.clients["reader"].get(url, headers={"Last-Event-ID": value})
        assert r.status_code == 400 and "Last-Event-ID" in _detail(r), value


@pytest.fixture
def upstream_sqlite(bare: Web) -> Iterator[None]:
    """The app's SQLite connections limited to 32,766 variables per statement, the default of
    SQLite as built upstream (Debian's build allows 250,000)."""
    yield from _bind_limit(bare, 32_766)


@pytest.fixture
def old_sqlite(bare: Web) -> Iterator[None]:
    """Limited to 999 variables per statement, the default of SQLite before 3.32: more ids
    than one statement binds, in a test that need not make 33,000 IOCs to show it."""
    yield from _bind_limit(bare, 999)


def _bind_limit(bare: Web, variables: int) -> Iterator[None]:
    db = bare.app.state.web.db
    engines = (db.engine, db._read_engine)

    def limit(dbapi_conn, _record, _proxy) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, variables)

    for engine in engines:
        event.listen(engine, "checkout", limit)
    yield
    for engine in engines:
        event.remove(engine, "checkout", limit)
        engine.dispose()  # drop the limited connections


@pytest.mark.usefixtures("upstream_sqlite")
def test_hundred_thousand_ioc_ids_is_400_with_a_short_message(bare: Web) -> None:
    analyst = bare.clients["analyst"]
    ids = list(range(1, 100_001))
    for action in ("enable", "disable", "remove"):
        r = analyst.post(f"/api/cases/{bare.case_id}/iocs/{action}", json={"ids": ids})
        assert r.status_code == 400, (action, r.status_code, r.text[:300])
        assert "no IOC with id 1, 2," in _detail(r) and len(_detail(r)) < 500


@pytest.mark.usefixtures("old_sqlite")
def test_more_ioc_ids_of_the_case_than_sqlite_binds_at_once(bare: Web) -> None:
    analyst = bare.clients["analyst"]
    url = f"/api/cases/{bare.case_id}/iocs"
    count = 1_200  # over the 999 variables of one statement
    values = [f"host{n}.example.org" for n in range(count)]
    assert analyst.post(url, json={"values": values, "type": "domain"}).status_code == 200
    ids = [i["id"] for i in analyst.get(url).json() if i["value"].startswith("host")]
    assert len(ids) == count
    r = analyst.post(f"{url}/disable", json={"ids": ids})
    assert r.status_code == 200, r.text[:300]
    assert sorted(r.json()["changed"]) == sorted(ids)
    assert analyst.post(f"{url}/remove", json={"ids": ids}).json()["removed"] == count
    assert not [i for i in analyst.get(url).json() if i["value"].startswith("host")]


def test_a_lone_surrogate_in_json_is_400(bare: Web) -> None:
    """Python's json reads "\\ud800" into a str that SQLite, argon2 and HMAC cannot encode."""
    raw = {"content-type": "application/json"}
    login_body = b'{"username": "admin", "password": "\\ud800 and more"}'
    r = bare.anonymous.post("/api/login", content=login_body, headers=raw)
    assert r.status_code == 400 and "surrogate" in _detail(r)
    analyst = bare.clients["analyst"]
    r = analyst.post("/api/cases", content=b'{"name": "case \\uDC00"}', headers=raw)
    assert r.status_code == 400 and "surrogate" in _detail(r)
    # a proper pair is text like any other
    r = analyst.post("/api/cases", content=b'{"name": "case \\ud83d\\ude00"}', headers=raw)
    assert r.status_code == 201 and r.json()["name"] == "case \U0001f600"


HUGE = 2**63  # one past the largest SQLite/PostgreSQL integer


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", f"/api/cases/{HUGE}", None),
        ("POST", f"/api/cases/{HUGE}/iocs", {"values": ["10.0.0.1"]}),
        ("GET", "/api/cases/{case}/events/1/-1", None),
        ("GET", "/api/cases/{case}/events/-1/1", None),
        ("POST", f"/api/cases/{{case}}/events/{HUGE}/1/marks", {"kind": "star"}),
        ("POST", f"/api/cases/{{case}}/events/{HUGE}/1/notes", {"text": "n"}),
        ("PUT", f"/api/cases/{{case}}/notes/{HUGE}", {"text": "n"}),
        ("DELETE", f"/api/cases/{{case}}/notes/{HUGE}", None),
        (
            "POST",
            "/api/cases/{case}/marks/bulk",
            {"action": "add", "kind": "star", "events": [{"file_id": HUGE, "seq": 0}]},
        ),
        ("POST", "/api/cases/{case}/iocs/enable", {"ids": [HUGE]}),
        ("POST", "/api/cases/{case}/files/reprocess", {"file_ids": [HUGE]}),
        ("POST", "/api/cases/{case}/files/retry", {"file_ids": [HUGE]}),
        ("GET", f"/api/cases/{{case}}/progress?last_id={HUGE}", None),
        ("GET", f"/api/cases/{{case}}/operations/{HUGE}", None),
        ("GET", f"/api/cases/{{case}}/saved-searches/{HUGE}/events", None),
        ("POST", "/api/cases/{case}/saved-searches", {"name": "n", "params": {"file_id": HUGE}}),
        ("GET", "/api/cases/{case}/events?file_id=%C2%B2", None),  # "²": isdigit, not int
        ("GET", "/api/cases/{case}/events?ioc_id=99999999999999999999", None),
        ("GET", f"/api/audit?case_id={HUGE}", None),
        ("POST", f"/api/users/reader/cases/{HUGE}", None),
        ("DELETE", f"/api/tokens/{HUGE}", None),
        ("DELETE", f"/api/cases/{{case}}/exclusions/{HUGE}", None),
        ("GET", "/cases/{case}/events/1/-1", None),
        ("POST", f"/cases/{{case}}/jobs/{HUGE}/pause", None),
        ("POST", f"/cases/{{case}}/saved-searches/{HUGE}/delete", None),
        ("POST", f"/cases/{{case}}/notes/{HUGE}/delete", None),
    ],
)
def test_ids_out_of_range_are_4xx(bare: Web, method: str, url: str, body: object) -> None:
    """Found by the fuzz test: ids past 2**63 overflowed SQLite (OverflowError) and negative
    event sequence numbers reached chDB as UInt64 parameters (BAD_QUERY_PARAMETER)."""
    r = bare.clients["admin"].request(method, url.replace("{case}", str(bare.case_id)), json=body)
    assert 400 <= r.status_code < 500, (url, r.status_code, r.text[:300])


@pytest.mark.parametrize("field", ["file_ids", "ioc_ids"])
def test_form_ids_that_are_not_plain_numbers_are_ignored(bare: Web, field: str) -> None:
    analyst = bare.clients["analyst"]
    url = {
        "file_ids": f"/cases/{bare.case_id}/evidence/retry",
        "ioc_ids": f"/cases/{bare.case_id}/iocs/action",
    }[field]
    form = {field: ["\u00b2", str(HUGE), "9" * 5000], "action": "enable"}
    r = analyst.post(url, data=form, follow_redirects=False)
    assert r.status_code in (303, 400), (r.status_code, r.text[:300])

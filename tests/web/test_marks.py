"""Marks and notes through the API and the page forms, on a real app with real samples:
tag/untag, star/unstar, hide/unhide one event, a selection or a whole search; tags with
counts; `tag:`, `is:`, `has:` and `note:` in the query language; notes with their author,
edited or deleted only by that author or an admin; every change audited with its label."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import (
    PASSWORD,
    XSS,
    Web,
    login,
    open_web,
    sample_uploads,
    uploads,
    xss_ndjson,
)

#: A search of more matches than this is refused for a bulk mark (the samples have 36 events).
CAP = 20
SAMPLES = (
    "Lateral Movement/LM_Remote_Service02_7045.evtx",  # 3 × 7045
    "Credential Access/kerberos_pwd_spray_4771.evtx",  # 9 × 4768, 2 × 4771, 1 × 1102
    "Privilege Escalation/Sysmon_UACME_22.evtx",  # 19 Sysmon events
)


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, attack_samples: Path) -> Iterator[Web]:
    home = tmp_path_factory.mktemp("markshome")
    files = [*sample_uploads(attack_samples, SAMPLES), *uploads(xss_ndjson(home / "x.ndjson"))]
    env = {"CASESCOPE_BULK_MARK_MAX_EVENTS": str(CAP)}
    with open_web(home, files, env=env) as app:
        # a second analyst with access to the case: not the author of the first one's notes
        admin = app.clients["admin"]
        body = {"username": "second", "password": PASSWORD, "role": "analyst"}
        assert admin.post("/api/users", json=body).status_code == 200
        assert admin.post(f"/api/users/second/cases/{app.case_id}").status_code == 200
        app.clients["second"] = login(app.app, "second")
        yield app


def _browser(web: Web, role: str) -> TestClient:
    """The user's session as a browser holds it: the cookie, no CSRF header (forms carry
    the token as a field); redirects are not followed."""
    client = TestClient(web.app, base_url="https://testserver", follow_redirects=False)
    client.cookies = web.clients[role].cookies
    return client


def _api(web: Web) -> str:
    return f"/api/cases/{web.case_id}"


def _keys(web: Web, query: str, role: str = "analyst", **params: str) -> list[tuple[int, int]]:
    r = web.clients[role].get(f"{_api(web)}/events", params={"q": query, "limit": "500", **params})
    assert r.status_code == 200, r.text
    return sorted((row["file_id"], row["seq"]) for row in r.json()["rows"])


def _mark(web: Web, key: tuple[int, int], kind: str, label: str = "", *, on: bool = True) -> int:
    path = f"{_api(web)}/events/{key[0]}/{key[1]}/marks"
    body = {"kind": kind, "label": label}
    client = web.clients["analyst"]
    r = client.post(path, json=body) if on else client.request("DELETE", path, json=body)
    return r.status_code


def _audit(web: Web, action: str) -> list[dict]:
    rows = web.clients["admin"].get("/api/audit", params={"limit": "500"}).json()
    return [r for r in rows if r["action"] == action and r["case_id"] == web.case_id]


def test_tag_search_by_tag_untag_with_who_and_audit(web: Web) -> None:
    event = _keys(web, "EventID:7045")[0]
    assert _keys(web, "tag:lateral-movement") == []
    assert _mark(web, event, "tag", "Lateral-Movement") == 200
    assert _mark(web, event, "tag", "Lateral-Movement") == 200  # again: no second mark
    # any case, wildcards, any tag, and the event field named `tag` is still reachable quoted
    assert _keys(web, "tag:lateral-movement") == [event]
    assert _keys(web, "tag:lateral*") == [event] == _keys(web, "has:tag")
    assert _keys(web, '"tag":lateral-movement') == []
    assert len(_keys(web, "EventID:7045 AND NOT tag:lateral-movement")) == 2
    detail = web.clients["reader"].get(f"{_api(web)}/events/{event[0]}/{event[1]}").json()
    (mark,) = detail["marks"]
    assert (mark["kind"], mark["label"], mark["by"]) == ("tag", "Lateral-Movement", "analyst")
    assert mark["at"]
    tags = web.clients["reader"].get(f"{_api(web)}/tags").json()
    assert [(t["label"], t["events"]) for t in tags] == [("Lateral-Movement", 1)]
    assert _mark(web, event, "tag", "Lateral-Movement", on=False) == 200
    assert _keys(web, "tag:lateral-movement") == []
    assert web.clients["reader"].get(f"{_api(web)}/tags").json() == []
    for action in ("event.tag", "event.untag"):
        details = [orjson.loads(r["detail"]) for r in _audit(web, action)]
        assert {"events": 1, "label": "Lateral-Movement"}.items() <= details[0].items()
        assert details[0]["keys"] == [f"{event[0]}:{event[1]}"]


def test_star_and_hide_from_the_query_language(web: Web) -> None:
    first, second = _keys(web, "EventID:4771")
    total = len(_keys(web, ""))
    assert _mark(web, first, "star") == 200
    assert _keys(web, "is:starred") == [first] == _keys(web, "", starred="true")
    assert _mark(web, second, "hidden") == 200
    assert len(_keys(web, "")) == total - 1  # hidden events are left out of a search …
    assert _keys(web, "is:hidden") == [second]  # … unless it asks for them
    assert _keys(web, "EventID:4771 AND NOT is:hidden") == [first]
    assert _mark(web, first, "star", on=False) == 200
    assert _mark(web, second, "hidden", on=False) == 200
    assert _keys(web, "is:starred") == [] == _keys(web, "is:hidden")
    assert len(_keys(web, "")) == total
    assert [a["actor"] for a in _audit(web, "event.unhidden")] == ["web:analyst"]


def test_bulk_on_a_selection_and_on_a_whole_search(web: Web) -> None:
    analyst = web.clients["analyst"]
    url = f"{_api(web)}/marks/bulk"
    picked = _keys(web, "EventID:4768")[:3]
    events = [{"file_id": f, "seq": s} for f, s in picked]
    body = {"action": "add", "kind": "tag", "label": "spray", "events": events}
    assert analyst.post(url, json=body).json() == {"events": 3, "changed": 3}
    assert analyst.post(url, json=body).json() == {"events": 3, "changed": 0}
    search = {"action": "add", "kind": "tag", "label": "spray", "search": {"q": "EventID:4768"}}
    assert analyst.post(url, json=search).json() == {"events": 9, "changed": 6}
    tags = {t["label"]: t["events"] for t in analyst.get(f"{_api(web)}/tags").json()}
    assert tags["spray"] == 9 and _keys(web, "tag:spray") == _keys(web, "EventID:4768")
    audit = orjson.loads(_audit(web, "event.tag")[0]["detail"])
    assert audit["query"] == "EventID:4768" and audit["label"] == "spray" and audit["changed"] == 6
    # a whole case of 36 events is over the cap: refused, nothing changed
    everything = {"action": "add", "kind": "star", "search": {"q": ""}}
    refused = analyst.post(url, json=everything)
    assert refused.status_code == 400 and "CASESCOPE_BULK_MARK_MAX_EVENTS" in refused.text
    assert _keys(web, "is:starred") == []
    remove = {**search, "action": "remove"}
    assert analyst.post(url, json=remove).json() == {"events": 9, "changed": 9}
    assert _keys(web, "tag:spray") == []


@pytest.mark.parametrize(
    "body",
    [
        {"action": "add", "kind": "star"},  # no target
        {"action": "add", "kind": "star", "events": [], "search": {}},  # both
        {"action": "flip", "kind": "star", "events": []},
        {"action": "add", "kind": "star", "events": [{"file_id": 0, "seq": 1}]},
        {"action": "add", "kind": "star", "events": [{"file_id": 1, "seq": -1}]},
        {"action": "add", "kind": "tag", "label": "x" * 101, "events": []},
        {"action": "add", "kind": "star", "search": {"q": "x", "bogus": 1}},
    ],
)
def test_bad_bulk_bodies_are_422(web: Web, body: dict) -> None:
    r = web.clients["analyst"].post(f"{_api(web)}/marks/bulk", json=body)
    assert r.status_code == 422, r.text


def test_bad_marks_are_400(web: Web) -> None:
    analyst = web.clients["analyst"]
    url = f"{_api(web)}/marks/bulk"
    no_label = {"action": "add", "kind": "tag", "label": "  ", "events": [{"file_id": 1, "seq": 0}]}
    assert analyst.post(url, json=no_label).status_code == 400
    bad_query = {"action": "add", "kind": "star", "search": {"q": "is:foo"}}
    r = analyst.post(url, json=bad_query)
    assert r.status_code == 400 and "is:starred" in r.json()["detail"]
    assert analyst.get(f"{_api(web)}/events", params={"q": "tag:[a TO b]"}).status_code == 400


def test_notes_author_admin_search_and_audit(web: Web) -> None:
    event = _keys(web, "EventID:1102")[0]
    notes_url = f"{_api(web)}/events/{event[0]}/{event[1]}/notes"
    analyst, second, admin = (web.clients[n] for n in ("analyst", "second", "admin"))
    r = analyst.post(notes_url, json={"text": "  Log cleared right after the Spray  "})
    assert r.status_code == 200, r.text
    note = r.json()
    assert (note["author"], note["text"], note["updated_at"]) == (
        "analyst",
        "Log cleared right after the Spray",
        None,
    )
    assert [n["id"] for n in web.clients["reader"].get(notes_url).json()] == [note["id"]]
    assert _keys(web, "has:note") == [event] == _keys(web, 'note:"after the spray"')
    assert _keys(web, "note:cleared*spray") == [event] and _keys(web, "note:nothing") == []
    row = web.clients["reader"].get(f"{_api(web)}/events", params={"q": "EventID:1102"}).json()
    assert row["rows"][0]["notes"] == 1
    edit = f"{_api(web)}/notes/{note['id']}"
    assert second.put(edit, json={"text": "mine now"}).status_code == 403
    assert second.delete(edit).status_code == 403
    edited = analyst.put(edit, json={"text": "Log cleared by the attacker"}).json()
    assert edited["text"] == "Log cleared by the attacker" and edited["updated_at"]
    assert admin.put(edit, json={"text": "checked by admin"}).status_code == 200
    assert admin.delete(edit).status_code == 200
    assert analyst.delete(edit).status_code == 404
    assert analyst.get(notes_url).json() == [] and _keys(web, "has:note") == []
    for action in ("note.add", "note.edit", "note.delete"):
        detail = orjson.loads(_audit(web, action)[0]["detail"])
        assert detail == {
            "note": note["id"],
            "event": f"{event[0]}:{event[1]}",
            "author": "analyst",
        }


@pytest.mark.parametrize(
    ("text", "status"),
    [
        pytest.param("", 422, id="empty"),
        pytest.param("   ", 400, id="blank"),
        pytest.param("x" * 10_001, 422, id="too long"),
        pytest.param("nul\x00byte", 400, id="NUL"),
    ],
)
def test_bad_notes_are_refused(web: Web, text: str, status: int) -> None:
    r = web.clients["analyst"].post(f"{_api(web)}/events/1/0/notes", json={"text": text})
    assert r.status_code == status, r.text


def test_a_note_of_another_case_is_404(web: Web) -> None:
    analyst = web.clients["analyst"]
    other = analyst.post("/api/cases", json={"name": "other case"}).json()["id"]
    note = analyst.post(f"{_api(web)}/events/1/0/notes", json={"text": "here"}).json()
    assert (
        analyst.put(f"/api/cases/{other}/notes/{note['id']}", json={"text": "x"}).status_code == 404
    )
    assert analyst.delete(f"/api/cases/{other}/notes/{note['id']}").status_code == 404
    assert analyst.delete(f"{_api(web)}/notes/{note['id']}").status_code == 200


def test_page_forms_mark_in_bulk_and_come_back(web: Web) -> None:
    analyst = web.clients["analyst"]
    csrf = analyst.headers["X-CSRF-Token"]
    picked = _keys(web, "EventID:7045")[:2]
    back = f"/cases/{web.case_id}/search?q=EventID%3A7045"
    form = {
        "csrf_token": csrf,
        "op": "tag",
        "label": "svc",
        "target": "selection",
        "event": [f"{f}:{s}" for f, s in picked],
        "back": back,
    }
    url = f"/cases/{web.case_id}/marks/bulk"
    browser = _browser(web, "analyst")
    r = browser.post(url, data=form)
    assert r.status_code == 303 and r.headers["location"] == back
    assert _keys(web, "tag:svc") == picked
    # every match of the search the page shows, then the off-site `back` is not followed
    whole = {**form, "op": "untag", "target": "search", "params": "q=EventID%3A7045"}
    whole["back"] = "https://evil.example/"
    r = browser.post(url, data=whole)
    assert r.status_code == 303 and r.headers["location"] == f"/cases/{web.case_id}/search"
    assert _keys(web, "tag:svc") == []
    assert browser.post(url, data={**form, "csrf_token": "wrong"}).status_code == 403
    assert (
        browser.post(url, data={k: v for k, v in form.items() if k != "csrf_token"}).status_code
        == 403
    )
    assert browser.post(url, data={**form, "op": "flip"}).status_code == 400
    assert browser.post(url, data={**form, "event": ["1:x"]}).status_code == 400
    assert browser.post(url, data={**form, "event": []}).status_code == 400
    form_r = {**form, "csrf_token": web.clients["reader"].headers["X-CSRF-Token"]}
    assert _browser(web, "reader").post(url, data=form_r).status_code == 403


def test_row_star_toggle_and_event_page_unmark(web: Web) -> None:
    analyst = web.clients["analyst"]
    csrf = analyst.headers["X-CSRF-Token"]
    key = _keys(web, "EventID:4771")[0]
    event = f"/cases/{web.case_id}/events/{key[0]}/{key[1]}"
    browser = _browser(web, "analyst")
    r = browser.post(f"{event}/marks", data={"csrf_token": csrf, "kind": "star"})
    assert r.status_code == 303 and r.headers["location"] == event
    html = analyst.get(f"/cases/{web.case_id}/search?q=EventID%3A4771").text
    assert f'formaction="{event}/marks/remove" name="kind" value="star"' in html
    assert "star by analyst" in html
    r = browser.post(f"{event}/marks/remove", data={"csrf_token": csrf, "kind": "star"})
    assert r.status_code == 303 and _keys(web, "is:starred") == []


def test_marks_and_notes_are_inert_text(web: Web) -> None:
    analyst = web.clients["analyst"]
    key = _keys(web, "EventID:4771")[1]
    base = f"{_api(web)}/events/{key[0]}/{key[1]}"
    assert analyst.post(f"{base}/marks", json={"kind": "tag", "label": XSS}).status_code == 200
    assert analyst.post(f"{base}/notes", json={"text": XSS}).status_code == 200
    pages = [
        f"/cases/{web.case_id}/events/{key[0]}/{key[1]}",
        f"/cases/{web.case_id}/tags",
        f"/cases/{web.case_id}/search?q=EventID%3A4771",
    ]
    for url in pages:
        html = web.clients["reader"].get(url).text
        assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in html, url
    # the tag's search link finds it, whatever its characters
    tags_page = web.clients["reader"].get(f"/cases/{web.case_id}/tags").text
    assert "q=tag%3A%22%3Cimg+src%3Dx+onerror%3Dalert%281%29%3E%22" in tags_page
    assert _keys(web, f'tag:"{XSS}"') == [key]

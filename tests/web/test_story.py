"""The case story and its report, and saved searches shared with the case: through the real
API and pages on a real ingested home (the `web` fixture: attack samples and a hostile NDJSON
file), with every role."""

from __future__ import annotations

import csv
import io
import re

import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import XSS, Web, login

FORMULA = '=HYPERLINK("http://evil.example","x")'


def _url(web: Web, tail: str) -> str:
    return f"/api/cases/{web.case_id}/{tail}"


def _events(web: Web, q: str, n: int) -> list[dict]:
    rows = web.clients["analyst"].get(_url(web, "events"), params={"q": q, "limit": n}).json()
    assert len(rows["rows"]) >= n, rows
    return rows["rows"][:n]


def _story(client: TestClient, web: Web) -> list[dict]:
    r = client.get(_url(web, "story"))
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _clear(web: Web) -> None:
    admin = web.clients["admin"]
    for item in _story(admin, web):
        assert admin.delete(_url(web, f"story/items/{item['id']}")).status_code == 200


def _add(client: TestClient, web: Web, rows: list[dict], **extra: object):  # type: ignore[no-untyped-def]
    events = [{"file_id": r["file_id"], "seq": r["seq"]} for r in rows]
    return client.post(_url(web, "story/events"), json={"events": events, **extra})


def _audit(web: Web, action: str) -> list[dict]:
    return web.clients["admin"].get("/api/audit", params={"action": action, "limit": 500}).json()


# --------------------------------------------------------------------------------- the story


def test_story_of_three_events_with_text_reordered_and_exported(web: Web) -> None:
    _clear(web)
    analyst = web.clients["analyst"]
    rows = _events(web, "EventID:4771 OR EventID:7045", 3)
    r = _add(analyst, web, rows)
    assert r.status_code == 201 and len(r.json()["added"]) == 3, r.text
    again = _add(analyst, web, rows[:1]).json()
    assert again == {"added": [], "present": 1, "missing": 0}  # an event is in a story once
    text = analyst.post(
        _url(web, "story/texts"), json={"text": "The spray starts here.", "position": 1}
    )
    assert text.status_code == 201, text.text
    items = _story(analyst, web)
    assert [i["kind"] for i in items] == ["event", "text", "event", "event"]
    assert [i["position"] for i in items] == [0, 1, 2, 3]
    first = items[0]["event"]
    assert first["found"] and first["event_id"] in (4771, 7045) and first["summary"]
    # move the text to the top, then reverse the whole story
    tid = text.json()["id"]
    assert analyst.patch(_url(web, f"story/items/{tid}"), json={"position": 0}).status_code == 200
    assert _story(analyst, web)[0]["kind"] == "text"
    ids = [i["id"] for i in _story(analyst, web)][::-1]
    assert [
        i["id"] for i in analyst.put(_url(web, "story/order"), json={"ids": ids}).json()["items"]
    ] == ids
    edited = analyst.patch(_url(web, f"story/items/{tid}"), json={"text": "Edited."})
    assert edited.status_code == 200
    md = analyst.get(_url(web, "report"), params={"format": "md"})
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert "attachment" in md.headers["content-disposition"]
    body = md.text
    assert body.startswith("# Case report: web case") and body.rstrip().endswith("Edited.")
    order = [int(m) for m in re.findall(r"event (\d+)\\\)", body)]
    assert order == [r["seq"] for r in reversed(rows)]  # the story's order, not the time's
    html = analyst.get(_url(web, "report"), params={"format": "html"}).text
    assert html.index("Edited.") > html.index(f"event-{rows[0]['file_id']}-{rows[0]['seq']}")
    table = list(csv.DictReader(io.StringIO(analyst.get(_url(web, "report?format=csv")).text)))
    assert [t["kind"] for t in table] == ["event", "event", "event", "text"]
    assert table[0]["event_id"] == str(rows[-1]["event_id"]) and table[0]["time_utc"].endswith(
        " UTC"
    )
    assert table[3]["text"] == "Edited." and table[3]["by"] == "analyst"
    exports = _audit(web, "report.export")
    assert {e["detail"].split(",")[0] for e in exports} >= {"md", "html", "csv"}
    assert _audit(web, "story.add") and _audit(web, "story.move") and _audit(web, "story.edit")


def test_add_starred_and_tagged_events(web: Web) -> None:
    _clear(web)
    analyst = web.clients["analyst"]
    rows = _events(web, "EventID:7045", 2)
    for row in rows:
        path = _url(web, f"events/{row['file_id']}/{row['seq']}/marks")
        assert analyst.post(path, json={"kind": "star"}).status_code == 200
    path = _url(web, f"events/{rows[0]['file_id']}/{rows[0]['seq']}/marks")
    assert analyst.post(path, json={"kind": "tag", "label": "lateral"}).status_code == 200
    tagged = analyst.post(_url(web, "story/marked"), json={"mark": "tag", "label": "lateral"})
    assert tagged.status_code == 201 and len(tagged.json()["added"]) == 1
    starred = analyst.post(_url(web, "story/marked"), json={"mark": "star"}).json()
    assert len(starred["added"]) == 1 and starred["present"] == 1
    items = _story(analyst, web)
    assert {(i["event"]["file_id"], i["event"]["seq"]) for i in items} == {
        (r["file_id"], r["seq"]) for r in rows
    }
    assert items[0]["event"]["tags"] == ["lateral"] and items[0]["event"]["starred"]
    hidden = analyst.post(_url(web, "story/marked"), json={"mark": "hidden"})
    assert hidden.status_code == 400


def test_report_keeps_event_and_analyst_text_inert(web: Web) -> None:
    _clear(web)
    analyst = web.clients["analyst"]
    (row,) = analyst.get(_url(web, "events"), params={"q": '"onerror"', "limit": 1}).json()["rows"]
    assert _add(analyst, web, [row]).status_code == 201
    for text in (XSS, FORMULA, "[click](javascript:alert(1)) ![x](http://evil.example/x.png)"):
        assert analyst.post(_url(web, "story/texts"), json={"text": text}).status_code == 201
    html = analyst.get(_url(web, "report?format=html")).text
    assert "<img src=x" not in html and html.count("&lt;img src=x onerror=alert(1)&gt;") >= 2
    assert "<script" not in html.lower() and 'http-equiv="Content-Security-Policy"' in html
    assert "default-src 'none'" in html
    assert not re.search(r"""<[^>]*\b(href|src)\s*=""", html, re.I)  # no link, no asset
    md = analyst.get(_url(web, "report?format=md")).text
    assert not re.search(r"(?<!\\)<", md)  # every < escaped: no raw HTML
    assert "\\<img src\\=x onerror\\=alert\\(1\\)\\>" in md  # an event value, as itself
    assert "\\[click\\](javascript" in md  # analyst text: no link
    assert not re.search(r"(?<!\\)\]\(", md)  # no link or image syntax left
    rows = list(csv.reader(io.StringIO(analyst.get(_url(web, "report?format=csv")).text)))
    assert [c for r in rows for c in r if "HYPERLINK" in c] == ["'" + FORMULA]
    page = analyst.get(f"/cases/{web.case_id}/story").text
    assert XSS not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


@pytest.mark.parametrize(
    ("method", "tail", "body", "status"),
    [
        ("POST", "story/texts", {"text": ""}, 422),
        ("POST", "story/texts", {"text": "x" * 20_001}, 422),
        ("POST", "story/texts", {"text": "   "}, 400),
        ("POST", "story/texts", {"text": "x", "position": -1}, 422),
        ("POST", "story/texts", {"text": "x", "extra": 1}, 422),
        ("POST", "story/events", {"events": []}, 422),
        ("POST", "story/events", {"events": [{"file_id": 999_999, "seq": 0}]}, 404),
        ("POST", "story/events", {"events": [{"file_id": 2**31 - 1, "seq": 2**63 - 1}]}, 404),
        ("POST", "story/events", {"events": [{"file_id": 2**63, "seq": 0}]}, 422),
        ("POST", "story/events", {"events": [{"file_id": 1, "seq": -1}]}, 422),
        ("POST", "story/marked", {"mark": "bogus"}, 422),
        ("PATCH", "story/items/999999", {"text": "x"}, 404),
        ("PATCH", "story/items/0", {"text": "x"}, 422),
        ("DELETE", "story/items/999999", None, 404),
        ("PUT", "story/order", {"ids": [999999]}, 400),
        ("GET", "report?format=pdf", None, 422),
    ],
)
def test_bad_story_input_is_a_clear_4xx(
    web: Web, method: str, tail: str, body, status: int
) -> None:  # type: ignore[no-untyped-def]
    r = web.clients["analyst"].request(method, _url(web, tail), json=body)
    assert r.status_code == status, r.text
    assert "detail" in r.json()


def test_an_event_item_has_no_text_to_edit_and_items_belong_to_their_case(web: Web) -> None:
    _clear(web)
    analyst = web.clients["analyst"]
    added = _add(analyst, web, _events(web, "EventID:4771", 1)).json()["added"][0]
    r = analyst.patch(_url(web, f"story/items/{added}"), json={"text": "x"})
    assert r.status_code == 400
    other = analyst.post("/api/cases", json={"name": "story other case"}).json()["id"]
    assert analyst.delete(f"/api/cases/{other}/story/items/{added}").status_code == 404
    assert analyst.get(f"/api/cases/{other}/story").json()["items"] == []


def test_roles_read_and_change_the_story(web: Web) -> None:
    _clear(web)
    reader, outsider = web.clients["reader"], web.clients["outsider"]
    rows = _events(web, "EventID:4771", 1)
    assert _add(reader, web, rows).status_code == 403
    assert reader.post(_url(web, "story/texts"), json={"text": "x"}).status_code == 403
    assert _add(web.clients["admin"], web, rows).status_code == 201
    assert len(_story(reader, web)) == 1
    assert reader.get(_url(web, "report?format=md")).status_code == 200
    item = _story(reader, web)[0]["id"]
    assert reader.delete(_url(web, f"story/items/{item}")).status_code == 403
    for tail in ("story", "report"):
        assert outsider.get(_url(web, tail)).status_code == 403
    assert _add(outsider, web, rows).status_code == 403
    assert web.anonymous.get(_url(web, "story")).status_code == 401
    no_csrf = login(web.app, "analyst")
    del no_csrf.headers["X-CSRF-Token"]
    assert _add(no_csrf, web, rows).status_code == 403


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def test_story_page_and_forms(web: Web) -> None:
    _clear(web)
    analyst, reader = web.clients["analyst"], web.clients["reader"]
    search = analyst.get(f"/cases/{web.case_id}/search", params={"q": "EventID:4771"}).text
    assert f'action="/cases/{web.case_id}/story/events"' in search
    assert 'class="story-add"' not in reader.get(f"/cases/{web.case_id}/search").text
    row = _events(web, "EventID:4771", 1)[0]
    back = f"/cases/{web.case_id}/search?q=EventID%3A4771"
    form = {"csrf_token": _csrf(search), "file_id": row["file_id"], "seq": row["seq"], "back": back}
    r = analyst.post(f"/cases/{web.case_id}/story/events", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == back
    evil = {**form, "back": "//evil.example/x"}
    r = analyst.post(f"/cases/{web.case_id}/story/events", data=evil, follow_redirects=False)
    assert r.headers["location"] == f"/cases/{web.case_id}/story"
    r = analyst.post(
        f"/cases/{web.case_id}/story/texts",
        data={"csrf_token": form["csrf_token"], "text": "Why it matters"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = analyst.get(f"/cases/{web.case_id}/story").text
    assert "Why it matters" in page and "Add all starred events" in page and "EventID 4771" in page
    item = re.search(r'id="item-(\d+)"', page).group(1)  # type: ignore[union-attr]
    r = analyst.post(
        f"/cases/{web.case_id}/story/items/{item}/move",
        data={"csrf_token": form["csrf_token"], "direction": "down"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert [i["kind"] for i in _story(analyst, web)] == ["text", "event"]
    read_only = reader.get(f"/cases/{web.case_id}/story").text
    assert "Why it matters" in read_only and "Add all starred events" not in read_only
    assert "/story/items/" not in read_only
    no_token = analyst.post(
        f"/cases/{web.case_id}/story/texts", data={"text": "x"}, headers={"X-CSRF-Token": ""}
    )
    assert no_token.status_code == 403


# ----------------------------------------------------------------- shared saved searches


def test_a_shared_search_is_seen_and_run_by_the_case_and_changed_by_its_owner(web: Web) -> None:
    analyst, reader, admin = (web.clients[n] for n in ("analyst", "reader", "admin"))
    body = {"name": "sprays", "params": {"q": "EventID:4771"}, "shared": True}
    made = analyst.post(_url(web, "saved-searches"), json=body)
    assert made.status_code == 201 and made.json()["shared"] and made.json()["owner"] == "analyst"
    sid = made.json()["id"]
    (seen,) = [s for s in reader.get(_url(web, "saved-searches")).json() if s["id"] == sid]
    assert seen["owner"] == "analyst" and seen["shared"] and not seen["editable"]
    assert reader.get(_url(web, f"saved-searches/{sid}/events")).json()["total"] > 0
    assert reader.patch(_url(web, f"saved-searches/{sid}"), json={"name": "x"}).status_code == 403
    assert reader.delete(_url(web, f"saved-searches/{sid}")).status_code == 403
    page = reader.get(f"/cases/{web.case_id}/search").text
    assert "shared · analyst" in page and f"/saved-searches/{sid}/delete" not in page
    assert web.clients["outsider"].get(_url(web, "saved-searches")).status_code == 403
    renamed = analyst.patch(_url(web, f"saved-searches/{sid}"), json={"name": "kerberos sprays"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "kerberos sprays"
    off = admin.patch(_url(web, f"saved-searches/{sid}"), json={"shared": False})
    assert off.status_code == 200 and not off.json()["shared"]  # an admin may unshare it
    assert reader.get(_url(web, f"saved-searches/{sid}/events")).status_code == 404
    assert all(s["id"] != sid for s in reader.get(_url(web, "saved-searches")).json())
    assert analyst.delete(_url(web, f"saved-searches/{sid}")).status_code == 200
    details = [a["detail"] for a in _audit(web, "search.share")]
    assert "shared 'sprays'" in details and "unshared 'kerberos sprays'" in details
    assert any("renamed 'sprays'" in a["detail"] for a in _audit(web, "search.change"))


def test_read_only_users_keep_searches_but_do_not_share_them(web: Web) -> None:
    reader = web.clients["reader"]
    body = {"name": "mine", "params": {}, "shared": True}
    assert reader.post(_url(web, "saved-searches"), json=body).status_code == 403
    mine = reader.post(_url(web, "saved-searches"), json={**body, "shared": False}).json()
    r = reader.patch(_url(web, f"saved-searches/{mine['id']}"), json={"shared": True})
    assert r.status_code == 403
    renamed = reader.patch(_url(web, f"saved-searches/{mine['id']}"), json={"name": "mine 2"})
    assert renamed.status_code == 200
    assert reader.patch(_url(web, f"saved-searches/{mine['id']}"), json={"x": 1}).status_code == 422
    assert 'name="shared"' not in reader.get(f"/cases/{web.case_id}/search").text
    reader.delete(_url(web, f"saved-searches/{mine['id']}"))


def test_share_form_on_the_search_page(web: Web) -> None:
    analyst = web.clients["analyst"]
    made = analyst.post(_url(web, "saved-searches"), json={"name": "form share", "params": {}})
    sid = made.json()["id"]
    page = analyst.get(f"/cases/{web.case_id}/search").text
    assert f"/saved-searches/{sid}/share" in page
    r = analyst.post(
        f"/cases/{web.case_id}/saved-searches/{sid}/share",
        data={"csrf_token": _csrf(page), "shared": "true"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert [
        s["shared"] for s in analyst.get(_url(web, "saved-searches")).json() if s["id"] == sid
    ] == [True]
    analyst.delete(_url(web, f"saved-searches/{sid}"))

"""Search UI: saved searches and history, sorts with keyset pages, detections and IOC pages.

One real app (SQLite, chDB, workers) with two small Sigma rules and one IOC loaded before the
samples are uploaded, so detections and IOC hits come from the real ingest.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from casescope.services.detections import DetectionFilter, detected_events, rule_hits
from casescope.services.event_search import SortKey, sort_value
from casescope.services.iocs import add_iocs
from casescope.store.rulesets import import_rules
from tests.web.conftest import (
    XSS,
    Web,
    login,
    open_web,
    rule_folder,
    sample_uploads,
    uploads,
    xss_ndjson,
)

RULES = {
    "tgt.yml": """\
        title: Kerberos TGT requested
        id: 6f1c1a4e-0000-4000-8000-000000004768
        status: test
        level: medium
        logsource: {product: windows, service: security}
        detection:
          selection: {EventID: 4768}
          condition: selection
        """,
    "service.yml": """\
        title: Service installed
        id: 6f1c1a4e-0000-4000-8000-000000007045
        status: test
        level: high
        logsource: {product: windows, service: system}
        detection:
          selection: {EventID: 7045}
          condition: selection
        """,
}
IOC_IP = "172.16.66.1"


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory, attack_samples: Path) -> Iterator[Web]:
    home = tmp_path_factory.mktemp("uihome")
    files = sample_uploads(attack_samples) + uploads(xss_ndjson(home / "xss.ndjson"))

    def prepare(web: Web) -> None:
        import_rules(web.db, web.settings, rule_folder(home / "rules", RULES), "ui")
        add_iocs(web.db, web.settings, web.case_id, [IOC_IP], note=XSS)

    with open_web(home, files, case_name="ui case", prepare=prepare) as web:
        yield web


def _url(ui: Web, tail: str) -> str:
    return f"/api/cases/{ui.case_id}/{tail}"


# ---------------------------------------------------------------- saved searches, history


def test_saved_search_crud_and_run(ui: Web) -> None:
    analyst = ui.clients["analyst"]
    params = {"q": "EventID:4768", "sort": "computer", "order": "desc", "columns": "IpAddress"}
    r = analyst.post(_url(ui, "saved-searches"), json={"name": "tgts", "params": params})
    assert r.status_code == 201, r.text
    saved = r.json()
    assert saved["params"] == params
    assert [s["name"] for s in analyst.get(_url(ui, "saved-searches")).json()] == ["tgts"]
    ran = analyst.get(_url(ui, f"saved-searches/{saved['id']}/events")).json()
    direct = analyst.get(
        _url(ui, "events"), params={"q": "EventID:4768", "sort": "computer", "order": "desc"}
    ).json()
    assert ran["total"] == direct["total"] > 0
    assert [r["seq"] for r in ran["rows"]] == [r["seq"] for r in direct["rows"]]
    page = analyst.get(f"/cases/{ui.case_id}/search").text
    assert "tgts" in page
    assert analyst.delete(_url(ui, f"saved-searches/{saved['id']}")).status_code == 200
    assert analyst.get(_url(ui, "saved-searches")).json() == []
    assert analyst.delete(_url(ui, f"saved-searches/{saved['id']}")).status_code == 404


def test_sort_headers_flip_the_order_of_the_column_sorted_by(ui: Web) -> None:
    page = f"/cases/{ui.case_id}/search"
    reader = ui.clients["reader"]
    ascending = reader.get(page, params={"sort": "computer", "order": "asc"}).text
    assert "computer ▲" in ascending and "computer ▼" not in ascending
    assert "sort=computer&amp;order=desc" in ascending  # click again: flip
    assert "sort=channel&amp;order=asc" in ascending  # another column starts ascending
    descending = reader.get(page, params={"sort": "computer", "order": "desc"}).text
    assert "computer ▼" in descending and "sort=computer&amp;order=asc" in descending


def test_saved_searches_are_personal_and_case_scoped(ui: Web) -> None:
    reader, analyst = ui.clients["reader"], ui.clients["analyst"]
    mine = reader.post(_url(ui, "saved-searches"), json={"name": "reader's", "params": {}})
    assert mine.status_code == 201  # read-only users may keep their own searches
    sid = mine.json()["id"]
    assert all(s["name"] != "reader's" for s in analyst.get(_url(ui, "saved-searches")).json())
    assert analyst.get(_url(ui, f"saved-searches/{sid}/events")).status_code == 404
    assert analyst.delete(_url(ui, f"saved-searches/{sid}")).status_code == 404
    outsider = ui.clients["outsider"]
    assert outsider.get(_url(ui, "saved-searches")).status_code == 403
    assert outsider.post(_url(ui, "saved-searches"), json={"name": "x"}).status_code == 403
    assert outsider.get(_url(ui, "search-history")).status_code == 403
    assert reader.delete(_url(ui, f"saved-searches/{sid}")).status_code == 200


def test_saving_checks_the_query_and_csrf(ui: Web) -> None:
    analyst = login(ui.app, "analyst")
    bad = analyst.post(_url(ui, "saved-searches"), json={"name": "b", "params": {"q": "a AND ("}})
    assert bad.status_code == 400
    unknown = analyst.post(_url(ui, "saved-searches"), json={"name": "b", "params": {"x": 1}})
    assert unknown.status_code == 422
    del analyst.headers["X-CSRF-Token"]
    assert analyst.post(_url(ui, "saved-searches"), json={"name": "b"}).status_code == 403


def test_save_form_and_hostile_name_escaped(ui: Web) -> None:
    client = ui.clients["analyst"]
    page = client.get(f"/cases/{ui.case_id}/search", params={"q": "EventID:4771"}).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    qs = re.search(r'name="params" value="([^"]*)"', page).group(1)
    r = client.post(
        f"/cases/{ui.case_id}/saved-searches",
        data={"csrf_token": token, "params": qs.replace("&amp;", "&"), "name": XSS},
        follow_redirects=False,
    )
    assert r.status_code == 303
    html = client.get(f"/cases/{ui.case_id}/search").text
    assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    (saved,) = [s for s in client.get(_url(ui, "saved-searches")).json() if s["name"] == XSS]
    assert saved["params"] == {"q": "EventID:4771"}
    client.delete(_url(ui, f"saved-searches/{saved['id']}"))


def test_history_newest_first_and_columns_belong_to_their_search(ui: Web) -> None:
    client = login(ui.app, "admin")
    client.get(_url(ui, "events"), params={"q": "EventID:4768"})
    client.get(_url(ui, "events"), params={"q": "EventID:4771", "columns": "IpAddress,Status"})
    first = client.get(_url(ui, "events"), params={"q": "EventID:4771"}).json()
    history = client.get(_url(ui, "search-history")).json()
    assert [h["params"].get("q") for h in history[:3]] == [
        "EventID:4771",
        "EventID:4771",
        "EventID:4768",
    ]
    assert history[1]["params"]["columns"] == "IpAddress,Status"
    if first["next_cursor"]:  # later pages are not history
        client.get(_url(ui, "events"), params={"q": "x", "cursor": first["next_cursor"]})
    assert len(client.get(_url(ui, "search-history")).json()) == len(history)
    client.get(_url(ui, "events"), params={"q": "EventID:4768", "columns": "TargetUserName"})
    html = client.get(f"/cases/{ui.case_id}/search", params={"q": "EventID:4771"}).text
    assert "TargetUserName</th>" not in html  # no columns in the URL: none extra
    html = client.get(f"/cases/{ui.case_id}/search", params={"columns": "TargetUserName"}).text
    assert "TargetUserName <a" in html


# ---------------------------------------------------------------- sorts and keyset pages


def _walk(client: TestClient, url: str, params: dict) -> list[dict]:
    rows, cursor = [], None
    while True:
        page = client.get(
            url, params={**params, "limit": 7, **({"cursor": cursor} if cursor else {})}
        )
        assert page.status_code == 200, page.text
        body = page.json()
        rows += body["rows"]
        cursor = body["next_cursor"]
        if not cursor:
            return rows


def _key(row: dict, sort: SortKey) -> tuple:
    ts = datetime.fromisoformat(str(row["ts"]))
    return (sort_value(row, sort), ts, row["file_id"], row["seq"])


@pytest.mark.parametrize("sort", list(SortKey))
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_sorted_keyset_pages_are_complete_and_ordered(ui: Web, sort: SortKey, order: str) -> None:
    client = ui.clients["reader"]
    params = {"sort": sort.value, "order": order}
    full = client.get(_url(ui, "events"), params={**params, "limit": 500}).json()
    assert full["next_cursor"] is None and full["total"] == len(full["rows"]) > 7
    walked = _walk(client, _url(ui, "events"), params)
    ids = [(r["file_id"], r["seq"]) for r in walked]
    assert ids == [(r["file_id"], r["seq"]) for r in full["rows"]]
    assert len(set(ids)) == len(ids) == full["total"]
    keys = [_key(r, sort) for r in walked]
    assert keys == sorted(keys, reverse=order == "desc")


def test_cursor_of_another_sort_is_a_400(ui: Web) -> None:
    client = ui.clients["reader"]
    first = client.get(_url(ui, "events"), params={"sort": "computer", "limit": 2}).json()
    wrong = client.get(
        _url(ui, "events"), params={"sort": "event_id", "cursor": first["next_cursor"]}
    )
    assert wrong.status_code == 400
    assert client.get(_url(ui, "events"), params={"cursor": "bm90IGEgY3Vyc29y"}).status_code == 400


# ---------------------------------------------------------------- detections and IOC hits


def test_detections_grouped_like_the_cli_summary_with_drill_down(ui: Web) -> None:
    client, db = ui.clients["reader"], ui.db
    expected = [
        (r.rule.level, r.rule.rule_uid, r.rule.title, r.hits)
        for r in rule_hits(db, DetectionFilter(ui.case_id))
    ]
    assert {uid[-4:] for _, uid, _, _ in expected} == {"4768", "7045"}
    api = client.get(_url(ui, "detections")).json()["rules"]
    assert [(d["level"], d["rule_uid"], d["title"], d["hits"]) for d in api] == expected
    (source,) = {d["source"] for d in api}
    by_source = client.get(_url(ui, "detections"), params={"source": source}).json()["rules"]
    assert by_source == api
    assert client.get(_url(ui, "detections"), params={"source": "other"}).json()["rules"] == []
    html = client.get(f"/cases/{ui.case_id}/detections").text
    for rule in api:
        rule_page = f"/cases/{ui.case_id}/detections/rules/{rule['id']}"
        link = re.search(rf'href="{rule_page}">(\d+)</a>', html)
        assert link and int(link.group(1)) == rule["hits"]
        assert (
            f'href="/cases/{ui.case_id}/search?rule={rule["rule_uid"]}"'
            in client.get(rule_page).text
        )
    for _, uid, _, _ in expected:
        events = detected_events(db, DetectionFilter(ui.case_id, rule_uid=uid))
        drilled = client.get(_url(ui, "events"), params={"rule": uid, "limit": 500}).json()
        assert drilled["total"] == len(events)
        assert {(r["file_id"], r["seq"]) for r in drilled["rows"]} == set(events)


def test_ioc_hits_grouped_with_drill_down(ui: Web) -> None:
    client = ui.clients["reader"]
    (hit,) = client.get(_url(ui, "ioc-hits")).json()
    assert hit["value"] == IOC_IP and hit["events"] > 0
    drilled = client.get(_url(ui, "events"), params={"ioc_id": hit["ioc_id"]}).json()
    assert drilled["total"] == hit["events"]
    html = client.get(f"/cases/{ui.case_id}/detections").text
    assert f'search?ioc_id={hit["ioc_id"]}">{hit["events"]}</a>' in html


# ---------------------------------------------------------------- IOC management page


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_ioc_page_add_disable_remove_with_csrf(ui: Web) -> None:
    client = login(ui.app, "analyst")
    html = client.get(f"/cases/{ui.case_id}/iocs").text
    assert IOC_IP in html and XSS not in html and "&lt;img src=x onerror" in html
    token = _csrf(html)
    del client.headers["X-CSRF-Token"]
    base = f"/cases/{ui.case_id}/iocs"
    refused = client.post(f"{base}/add", data={"values": "evil[.]example"})
    assert refused.status_code == 403
    added = client.post(
        f"{base}/add",
        data={"values": "evil[.]example\nbad.example", "note": XSS, "csrf_token": token},
        follow_redirects=False,
    )
    assert added.status_code == 303, added.text
    ids = {i["value"]: i["id"] for i in client.get(_url(ui, "iocs")).json()}
    assert {"evil.example", "bad.example"} <= set(ids)
    new = [ids["evil.example"], ids["bad.example"]]
    data = {"action": "disable", "ioc_ids": new, "csrf_token": token}
    assert client.post(f"{base}/action", data=data, follow_redirects=False).status_code == 303
    state = {i["id"]: i["enabled"] for i in client.get(_url(ui, "iocs")).json()}
    assert not state[new[0]] and not state[new[1]]
    data = {"action": "enable", "ioc_ids": new[:1], "csrf_token": token}
    assert client.post(f"{base}/action", data=data, follow_redirects=False).status_code == 303
    state = {i["id"]: i["enabled"] for i in client.get(_url(ui, "iocs")).json()}
    assert state[new[0]] and not state[new[1]]
    data = {"action": "explode", "ioc_ids": new, "csrf_token": token}
    unknown = client.post(f"{base}/action", data=data, follow_redirects=False)
    assert unknown.status_code == 400 and "unknown action" in unknown.text
    data = {"action": "remove", "ioc_ids": new, "csrf_token": token}
    assert client.post(f"{base}/action", data=data, follow_redirects=False).status_code == 303
    left = {i["id"] for i in client.get(_url(ui, "iocs")).json()}
    assert not left & set(new)


def test_ioc_import_upload_reports_bad_lines(ui: Web) -> None:
    client = ui.clients["analyst"]
    text = "type,value,note\ndomain,import.example,from a feed\nmd5,nothex,broken\n"
    r = client.post(
        _url(ui, "iocs/import"), files={"file": ("feed.csv", text.encode(), "text/csv")}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["added"]) == 1 and [e["line"] for e in body["errors"]] == [3]
    client.post(_url(ui, "iocs/remove"), json={"ids": body["added"]})


def test_new_ioc_is_hunted_in_serves_index_without_a_rehunt(ui: Web) -> None:
    """serve owns the index, so an IOC added in the web app is hunted there at once: no
    ioc_only job for the case's files, and its hits are the events that hold the value."""
    client = ui.clients["analyst"]
    computer = client.get(_url(ui, "events"), params={"limit": 1}).json()["rows"][0]["computer"]
    expected = client.get(_url(ui, "events"), params={"computer": computer}).json()["total"]
    body = client.post(_url(ui, "iocs"), json={"values": [computer], "type": "string"}).json()
    try:
        assert body["queued"] == 0 and body["index_hits"] >= expected > 0, body
        (ioc_id,) = body["added"]
        hits = {h["ioc_id"]: h for h in client.get(_url(ui, "ioc-hits")).json()}
        assert hits[ioc_id]["events"] >= expected
    finally:
        client.post(_url(ui, "iocs/remove"), json={"ids": body["added"]})


def test_readers_cannot_change_iocs(ui: Web) -> None:
    reader = ui.clients["reader"]
    assert reader.get(f"/cases/{ui.case_id}/iocs").status_code == 200
    assert reader.post(_url(ui, "iocs"), json={"values": ["x.example"]}).status_code == 403
    assert reader.post(_url(ui, "iocs/disable"), json={"ids": [1]}).status_code == 403
    assert ui.clients["outsider"].get(f"/cases/{ui.case_id}/iocs").status_code == 403


def test_facets_count_the_matches(ui: Web) -> None:
    client = ui.clients["reader"]
    total = client.get(_url(ui, "events"), params={"q": "EventID:4768"}).json()["total"]
    hosts = client.get(_url(ui, "facets"), params={"field": "computer", "q": "EventID:4768"})
    assert sum(h["events"] for h in hosts.json()) == total
    ips = client.get(_url(ui, "facets"), params={"field": "IpAddress"}).json()
    assert ips[0] == {"value": IOC_IP, "events": 10}
    assert ui.clients["outsider"].get(_url(ui, "facets"), params={"field": "x"}).status_code == 403


def test_counts_past_the_limit_say_so_and_can_be_made_exact(ui: Web) -> None:
    client = ui.clients["reader"]
    settings = ui.app.state.web.settings
    exact = client.get(_url(ui, "events"), params={"limit": 3}).json()
    assert exact["total_exact"] is True and exact["total"] > 5
    saved = settings.search_count_limit
    settings.search_count_limit = 5
    try:
        capped = client.get(_url(ui, "events"), params={"limit": 3}).json()
        assert (capped["total"], capped["total_exact"]) == (5, False)
        assert capped["rows"] == exact["rows"] and capped["next_cursor"] == exact["next_cursor"]
        asked = client.get(_url(ui, "events"), params={"limit": 3, "exact_total": "true"}).json()
        assert (asked["total"], asked["total_exact"]) == (exact["total"], True)
        page = client.get(f"/cases/{ui.case_id}/search", params={"q": ""})
        assert page.status_code == 200
        count = re.search(r'<p id="result-count"[^>]*>(.*?)</p>', page.text, re.S)
        assert count and "5+ matching events" in count.group(1)
        link = re.search(r'id="exact-count" href="([^"]+)"', count.group(1))
        assert link and "exact_total=true" in link.group(1)
        counted = client.get(link.group(1).replace("&amp;", "&"))
        assert f"{exact['total']:,} matching events" in counted.text
        assert 'id="exact-count"' not in counted.text
    finally:
        settings.search_count_limit = saved
    settings.search_count_limit = 0  # 0: always exact
    try:
        again = client.get(_url(ui, "events"), params={"limit": 3}).json()
        assert (again["total"], again["total_exact"]) == (exact["total"], True)
    finally:
        settings.search_count_limit = saved


def test_event_field_facets_past_the_sample_are_labelled(ui: Web) -> None:
    client = ui.clients["reader"]
    settings = ui.app.state.web.settings
    full = client.get(_url(ui, "facets"), params={"field": "IpAddress"}).json()
    matched = sum(r["events"] for r in full)
    assert matched > 3 and all("sample" not in r for r in full)
    saved = settings.facet_sample_events
    settings.facet_sample_events = 3
    try:
        sampled = client.get(_url(ui, "facets"), params={"field": "IpAddress"}).json()
        assert sampled and all(r["sample"] == 3 for r in sampled)
        assert sum(r["events"] for r in sampled) == 3
        asked = client.get(_url(ui, "facets"), params={"field": "IpAddress", "exact": "true"})
        assert asked.json() == full
        hosts = client.get(_url(ui, "facets"), params={"field": "computer"}).json()
        assert all("sample" not in r for r in hosts)  # columns: always all matches
        total = client.get(_url(ui, "events"), params={"limit": 1}).json()["total"]
        assert sum(r["events"] for r in hosts) == total
    finally:
        settings.facet_sample_events = saved


def test_exclusions_hide_and_restore_hits(ui: Web) -> None:
    analyst, reader = ui.clients["analyst"], ui.clients["reader"]
    url = f"/api/cases/{ui.case_id}/exclusions"
    tgt = "6f1c1a4e-0000-4000-8000-000000004768"
    before = {d["rule_uid"]: d for d in analyst.get(_url(ui, "detections")).json()["rules"]}
    rows = analyst.get(_url(ui, "events"), params={"rule": tgt, "limit": 500}).json()["rows"]
    computer = rows[0]["computer"]
    expected = sum(1 for r in rows if r["computer"] == computer)
    body = {"rule_uid": tgt, "conditions": {"Computer": [computer]}, "note": "lab DC"}
    assert reader.post(url, json=body).status_code == 403
    assert analyst.post(url, json={"rule_uid": "no-such-rule"}).status_code == 400
    assert analyst.post(url, json={"document": "not: a filter"}).status_code == 400
    made = analyst.post(url, json=body)
    assert made.status_code == 201 and made.json()["hidden"] == expected
    everything = analyst.get(_url(ui, "detections"), params={"hits": "all"}).json()["rules"]
    after = {d["rule_uid"]: d for d in everything}
    assert after[tgt]["hits"] == before[tgt]["hits"] - expected
    assert after[tgt]["excluded"] == expected
    other = next(uid for uid in before if uid != tgt)
    assert after[other] == before[other]  # only the excluded rule's hits were touched
    hidden = analyst.get(_url(ui, "detections"), params={"hits": "excluded"}).json()["rules"]
    assert [d["rule_uid"] for d in hidden] == [tgt]
    (listed,) = reader.get(url).json()
    assert listed["id"] == made.json()["id"] and listed["note"] == "lab DC"
    drilled = analyst.get(_url(ui, "events"), params={"rule": tgt, "limit": 500}).json()
    assert drilled["total"] == len(rows) - expected  # hidden hits leave the search filters
    removed = analyst.delete(f"{url}/{listed['id']}")
    assert removed.json() == {"id": listed["id"], "shown_again": expected}
    again = analyst.get(_url(ui, "detections")).json()["rules"]
    assert {d["rule_uid"]: d for d in again} == before
    assert analyst.delete(f"{url}/{listed['id']}").status_code == 404

"""The search workbench through real HTTP: timeline, fields, pivots and pills, rows that
explain themselves, paging both ways, first steps, the time-zone setting.

One real app (SQLite, chDB, workers) with two Sigma rules (one with a hostile title and
ATT&CK tags) and two IOCs loaded before the samples are uploaded, so detections and IOC hits
come from the real ingest; an NDJSON file carries values that break naive quoting.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from casescope.hunt.ioc import IocType
from casescope.services.annotations import badges_of, techniques
from casescope.services.iocs import add_iocs
from casescope.store.query import compile_query, no_marks, parse_query
from casescope.store.query_ast import Literal, Text
from casescope.store.rulesets import import_rules
from tests.unit.store.test_pills import NASTY
from tests.web.conftest import (
    BIDI,
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
    "tgt.yml": f"""\
        title: '{XSS} TGT requested'
        id: 6f1c1a4e-0000-4000-8000-00000000a768
        status: test
        level: critical
        tags: [attack.credential_access, attack.t1558.003, 'attack.{XSS}']
        logsource: {{product: windows, service: security}}
        detection:
          selection: {{EventID: 4768}}
          condition: selection
        """,
    "service.yml": """\
        title: Service installed
        id: 6f1c1a4e-0000-4000-8000-00000000b045
        status: test
        level: high
        tags: [attack.persistence, attack.t1543.003]
        logsource: {product: windows, service: system}
        detection:
          selection: {EventID: 7045}
          condition: selection
        """,
}
IOC_IP = "172.16.66.1"


def _nasty_ndjson(path: Path) -> Path:
    """One event per nasty value (field `Nasty`), a minute apart, and one hostile field name."""
    lines = [
        json.dumps({"EventTime": f"2024-06-01T10:{n:02d}:00Z", "Nasty": value, "Kind": "nasty"})
        for n, value in enumerate(NASTY)
    ]
    lines.append(json.dumps({"EventTime": "2024-06-01T11:00:00Z", XSS: "hostile name"}))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def wb(tmp_path_factory: pytest.TempPathFactory, attack_samples: Path) -> Iterator[Web]:
    home = tmp_path_factory.mktemp("wbhome")
    made = (xss_ndjson(home / "xss.ndjson"), _nasty_ndjson(home / "nasty.ndjson"))
    files = sample_uploads(attack_samples) + uploads(*made)

    def prepare(web: Web) -> None:
        import_rules(web.db, web.settings, rule_folder(home / "rules", RULES), "wb")
        add_iocs(web.db, web.settings, web.case_id, [IOC_IP])
        add_iocs(web.db, web.settings, web.case_id, [XSS], IocType.STRING)

    with open_web(home, files, case_name="workbench", prepare=prepare) as web:
        yield web


def _api(wb: Web, tail: str) -> str:
    return f"/api/cases/{wb.case_id}/{tail}"


def _page(wb: Web, tail: str = "") -> str:
    return f"/cases/{wb.case_id}/search{tail}"


def _total(client: TestClient, wb: Web, **params: object) -> int:
    r = client.get(_api(wb, "events"), params={**params, "limit": 1, "exact_total": "true"})
    assert r.status_code == 200, r.text
    return r.json()["total"]


# ---------------------------------------------------------------- timeline


def test_the_histogram_counts_every_timed_match_in_equal_buckets(wb: Web) -> None:
    client = wb.clients["reader"]
    line = client.get(_api(wb, "histogram")).json()
    assert line["tz"] == "UTC" and line["bucket"] and 60 <= len(line["buckets"]) <= 120
    assert line["total"] + line["untimed"] == _total(client, wb)
    starts = [datetime.fromisoformat(b["start"]) for b in line["buckets"]]
    widths = {(b - a).total_seconds() for a, b in itertools.pairwise(starts)}
    assert widths == {line["bucket_seconds"]}  # linear: empty buckets are kept
    assert any(b["events"] == 0 for b in line["buckets"])
    assert line["max_events"] == max(b["events"] for b in line["buckets"])
    assert all(b["label"].endswith(" UTC") for b in line["buckets"])
    narrowed = client.get(_api(wb, "histogram"), params={"q": "EventID:4768"}).json()
    assert narrowed["total"] == _total(client, wb, q="EventID:4768") > 0


def test_a_range_sets_the_buckets_and_the_zone_labels_them(wb: Web) -> None:
    client = wb.clients["reader"]
    params = {"start": "2024-06-01T10:00:00Z", "end": "2024-06-01T11:00:00Z", "tz": "Asia/Tokyo"}
    line = client.get(_api(wb, "histogram"), params=params).json()
    assert line["bucket"] == "1 minute" and len(line["buckets"]) == 60
    assert line["buckets"][0]["start"].startswith("2024-06-01T10:00:00")
    assert line["buckets"][0]["label"] == "2024-06-01 19:00:00 JST"
    assert line["total"] == len(NASTY)  # one a minute from 10:00 (the 11:00 one is out)
    assert line["ticks"] and line["ticks"][0]["label"].startswith("2024-06-01 19:")


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"tz": "Mars/Olympus"}, 400),
        ({"tz": "../../../etc/passwd"}, 400),
        ({"start": "2024-06-02", "end": "2024-06-01"}, 400),  # an inverted brush
        ({"buckets": 5}, 400),
        ({"buckets": 10**9}, 400),
        ({"buckets": "many"}, 422),
        ({"start": "yesterday"}, 400),
        ({"q": "EventID:(4624"}, 400),
    ],
)
def test_bad_histogram_input_is_a_clear_4xx(wb: Web, params: dict, status: int) -> None:
    r = wb.clients["reader"].get(_api(wb, "histogram"), params=params)
    assert r.status_code == status, r.text
    assert "Traceback" not in r.text and r.json()["detail"]


def test_the_histogram_is_guarded_like_the_search(wb: Web) -> None:
    assert wb.clients["outsider"].get(_api(wb, "histogram")).status_code == 403
    assert wb.clients["admin"].get("/api/cases/999/histogram").status_code == 404
    assert wb.anonymous.get(_api(wb, "histogram")).status_code == 401
    openapi = wb.clients["reader"].get("/openapi.json").json()
    ok = openapi["paths"]["/api/cases/{case_id}/histogram"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/TimelineOut")


def test_an_inverted_range_is_a_400_for_every_search(wb: Web) -> None:
    params = {"start": "2024-06-02T00:00:00Z", "end": "2024-06-01T00:00:00Z"}
    client = wb.clients["reader"]
    assert client.get(_api(wb, "events"), params=params).status_code == 400
    page = client.get(_page(wb), params=params)
    assert page.status_code == 200 and "ends before it starts" in page.text


# ---------------------------------------------------------------- the time zone


def test_each_user_chooses_the_zone_of_every_time_shown(wb: Web) -> None:
    client = login(wb.app, "reader")
    r = client.put("/api/me/timezone", json={"timezone": "Europe/Berlin"})
    assert r.status_code == 200 and r.json() == {"timezone": "Europe/Berlin"}
    try:
        line = client.get(_api(wb, "histogram")).json()
        assert line["tz"] == "Europe/Berlin"
        assert all(re.search(r" CES?T$", b["label"]) for b in line["buckets"])
        html = client.get(_page(wb), params={"q": "EventID:4768"}).text
        assert re.search(r"\d\d:\d\d:\d\d CES?T</a>", html) and 'id="tz-link"' in html
        assert wb.clients["analyst"].get(_api(wb, "histogram")).json()["tz"] == "UTC"
        bad = client.put("/api/me/timezone", json={"timezone": "Europe/Nowhere"})
        assert bad.status_code == 400 and "unknown time zone" in bad.json()["detail"]
        del client.headers["X-CSRF-Token"]
        assert client.put("/api/me/timezone", json={"timezone": "UTC"}).status_code == 403
    finally:
        wb.clients["reader"].put("/api/me/timezone", json={"timezone": "UTC"})


def test_the_settings_page_sets_the_zone_with_csrf(wb: Web) -> None:
    client = login(wb.app, "analyst")
    page = client.get("/settings", params={"back": "//evil.example/x"}).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert "evil.example" not in page  # not a local path: not kept
    del client.headers["X-CSRF-Token"]
    data = {"timezone": "America/New_York", "back": _page(wb)}
    assert client.post("/settings/timezone", data=data).status_code == 403
    done = client.post(
        "/settings/timezone", data={**data, "csrf_token": token}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"] == _page(wb)
    try:
        assert client.get(_api(wb, "histogram")).json()["tz"] == "America/New_York"
        unknown = client.post("/settings/timezone", data={"timezone": "x", "csrf_token": token})
        assert unknown.status_code == 400
    finally:
        client.post("/settings/timezone", data={"timezone": "UTC", "csrf_token": token})


# ---------------------------------------------------------------- fields and pivots


def test_fields_of_the_matches_with_counts_and_a_sample_label(wb: Web) -> None:
    client = wb.clients["reader"]
    found = client.get(_api(wb, "fields"), params={"q": "EventID:4768"}).json()
    names = {f["name"]: f for f in found["fields"]}
    assert found["sample"] is None and names["TargetUserName"]["events"] > 0
    assert names["TargetUserName"]["filterable"] and "Nasty" not in names
    every = {f["name"]: f for f in client.get(_api(wb, "fields")).json()["fields"]}
    assert every["Nasty"]["events"] == len(NASTY) and not every[XSS]["filterable"]
    settings = wb.app.state.web.settings
    saved, settings.facet_sample_events = settings.facet_sample_events, 3
    try:
        assert client.get(_api(wb, "fields")).json()["sample"] == 3
    finally:
        settings.facet_sample_events = saved
    assert wb.clients["outsider"].get(_api(wb, "fields")).status_code == 403


def _pivot(client: TestClient, wb: Web, **params: str) -> tuple[int, dict]:
    r = client.get(_page(wb, "/pivot"), params=params, follow_redirects=False)
    if r.status_code != 303:
        return r.status_code, {}
    target = urlsplit(r.headers["location"])
    assert target.path == _page(wb)
    return 303, parse_qs(target.query)


@pytest.mark.parametrize("value", NASTY)
def test_filter_for_and_out_any_value_round_trips(wb: Web, value: str) -> None:
    """A value with quotes, colons, backslashes or operators filters for exactly itself."""
    client = wb.clients["reader"]
    status, target = _pivot(client, wb, q="Kind:nasty", field="Nasty", value=value, mode="for")
    assert status == 303 and target["q"] == ["Kind:nasty"] and len(target["filter"]) == 1
    assert _total(client, wb, q="Kind:nasty", filter=target["filter"]) == 1
    rows = client.get(_api(wb, "events"), params={"filter": target["filter"]}).json()["rows"]
    assert [r["fields"]["Nasty"] for r in rows] == [value]
    status, out = _pivot(client, wb, q="Kind:nasty", field="Nasty", value=value, mode="out")
    assert _total(client, wb, q="Kind:nasty", filter=out["filter"]) == len(NASTY) - 1


def test_pivots_keep_the_search_and_search_everywhere_starts_anew(wb: Web) -> None:
    client = wb.clients["reader"]
    base = {"q": "krbtgt", "columns": "IpAddress", "sort": "computer", "filter": "EventID:4768"}
    status, target = _pivot(client, wb, **base, field="TargetUserName", value="admin", mode="out")
    assert status == 303
    assert target["filter"] == ["EventID:4768", "NOT TargetUserName:admin"]
    assert target["columns"] == ["IpAddress"] and target["sort"] == ["computer"]
    again = _pivot(
        client,
        wb,
        **{**base, "filter": target["filter"]},
        field="TargetUserName",
        value="admin",
        mode="out",
    )[1]
    assert again["filter"] == target["filter"]  # the same pill is not added twice
    status, anywhere = _pivot(
        client, wb, **base, field="IpAddress", value=IOC_IP, mode="everywhere"
    )
    assert parse_query(anywhere["q"][0]) == Text(Literal(IOC_IP)) and list(anywhere) == ["q"]
    column = _pivot(client, wb, field="computer", value="X", mode="for", source="column")[1]
    assert column["filter"] == ["computer:X"]


@pytest.mark.parametrize(
    "params",
    [
        {"field": "host", "value": "x", "mode": "for"},  # read as the computer column
        {"field": "has space", "value": "x", "mode": "out"},
        {"field": "Note", "value": "nul\x00byte", "mode": "for"},
        {"field": "Note", "value": "", "mode": "everywhere"},
        {"field": "Note", "value": "x", "mode": "sideways"},
    ],
)
def test_a_value_that_cannot_be_a_filter_is_a_clear_4xx(wb: Web, params: dict) -> None:
    status, _ = _pivot(wb.clients["reader"], wb, **params)
    assert status in (400, 422)


def test_pills_are_part_of_the_url_and_removable(wb: Web) -> None:
    client = wb.clients["reader"]
    pills = ["EventID:4768", f"NOT TargetUserName:{json.dumps(XSS)}"]
    html = client.get(_page(wb), params={"q": "", "filter": pills}).text
    shown = re.findall(
        r'<li class="pill( negated)?"><code>(.*?)</code>', html.replace("&#34;", '"')
    )
    assert [s[1] for s in shown] == [
        "EventID:4768",
        'NOT TargetUserName:"&lt;img src=x onerror=alert(1)&gt;"',
    ]
    assert XSS not in html
    removes = re.findall(r'class="pill-remove" href="([^"]+)"', html)
    left = parse_qs(urlsplit(removes[0].replace("&amp;", "&")).query)
    assert left["filter"] == [pills[1]]
    narrowed = _total(client, wb, filter=pills[:1])
    assert 0 < narrowed < _total(client, wb)
    bad = client.get(_page(wb), params={"filter": 'x:"open'})
    assert "filter 1: unclosed quote" in bad.text
    too_many = client.get(_api(wb, "events"), params={"filter": [f"a{n}" for n in range(21)]})
    assert too_many.status_code == 400


# ---------------------------------------------------------------- rows


def test_rows_show_detections_iocs_and_the_summary(wb: Web) -> None:
    html = wb.clients["reader"].get(_page(wb), params={"q": "EventID:4768"}).text
    rows = re.findall(r"<tr>\s*<td class=\"ts\">(.*?)</tr>", html, re.S)
    assert rows
    for row in rows:
        assert 'class="badge level-critical"' in row
        assert '<span class="tech">T1558.003</span>' in row
        assert "&lt;img src=x onerror=alert(1)&gt; TGT requested" in row
        assert "<b>TargetUserName</b>" in row and "<b>ServiceName</b>" in row
    assert any(f"IOC {IOC_IP}" in row for row in rows)
    assert XSS not in html  # the hostile rule title and tag stay text
    services = wb.clients["reader"].get(_page(wb), params={"q": "EventID:7045"}).text
    assert 'class="badge level-high"' in services and "T1543.003" in services
    assert "<b>ServiceName</b>" in services and "<b>ImagePath</b>" in services


def test_hostile_values_stay_inert_in_rows_columns_and_highlights(wb: Web) -> None:
    client = wb.clients["reader"]
    html = client.get(_page(wb), params={"q": '"<img"', "columns": f"Message,FileName,{XSS}"}).text
    assert XSS not in html and "<img" not in html
    assert "<mark>&lt;img</mark> src=x onerror=alert(1)&gt;" in html  # marked, escaped
    assert "IOC &lt;img src=x onerror=alert(1)&gt;" in html  # the string IOC's badge
    assert "invoice[U+202E]txt.exe" in html and "\u202e" not in html
    assert 'data-value="&#34;invoice\\u202etxt.exe&#34;"' in html  # the exact value, inert
    assert '<th class="extra-col">&lt;img src=x onerror=alert(1)&gt; <a' in html


def test_highlights_mark_the_query_words(wb: Web) -> None:
    html = wb.clients["reader"].get(_page(wb), params={"q": "krbtgt AND NOT admin"}).text
    assert "<mark>krbtgt</mark>" in html and "<mark>admin</mark>" not in html


def test_badges_are_fetched_once_per_page_not_per_row(wb: Web) -> None:
    db = wb.db
    rows = wb.clients["reader"].get(_api(wb, "events"), params={"limit": 200}).json()["rows"]
    keys = [(r["file_id"], r["seq"]) for r in rows]
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("SELECT"):
            statements.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        badges = badges_of(db, wb.case_id, keys)
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert len(keys) > 30 and len(statements) == 2
    assert any(b.detections for b in badges.values()) and any(b.iocs for b in badges.values())
    assert techniques(f"attack.t1003.001 attack.T1059 attack.execution attack.{XSS}") == (
        "T1003.001",
        "T1059",
    )


def test_columns_belong_to_the_search_not_to_later_ones(wb: Web) -> None:
    client = login(wb.app, "analyst")
    first = client.get(_page(wb), params={"q": "EventID:4768", "columns": "IpAddress"}).text
    assert '<th class="extra-col">IpAddress' in first
    later = client.get(_page(wb), params={"q": "EventID:4771"}).text
    assert "IpAddress <a" not in later and "extra-col" not in later
    removes = re.findall(r'class="col-remove" href="([^"]+)"', first)
    assert "columns" not in parse_qs(urlsplit(removes[0].replace("&amp;", "&")).query)


# ---------------------------------------------------------------- paging and first steps


def _links(html: str) -> dict[str, str]:
    found = re.findall(r'<a class="(first|prev|next|last)-page" href="([^"]+)"', html)
    return {kind: href.replace("&amp;", "&") for kind, href in found}


def _rows(html: str) -> list[str]:
    """The events of a page (their links carry the search after `?`, for previous/next)."""
    return [link.split("?")[0] for link in re.findall(r'class="event-link" href="([^"]+)"', html)]


def test_pages_walk_forward_back_and_to_the_end(wb: Web) -> None:
    client = wb.clients["reader"]
    total = _total(client, wb)
    assert 50 < total < 100  # two pages of 50
    first = client.get(_page(wb), params={"q": ""}).text
    assert f"events 1–50 of {total:,} · page 1 of 2" in first
    assert "first" not in _links(first) and "prev" not in _links(first)
    second = client.get(_links(first)["next"]).text
    assert f"events 51–{total} of {total:,} · page 2 of 2" in second
    assert "next" not in _links(second) and "last" not in _links(second)
    back = client.get(_links(second)["prev"]).text
    assert _rows(back) == _rows(first) and "prev" not in _links(back)
    last = client.get(_links(first)["last"]).text
    assert _rows(last) == _rows(second)
    assert f"events 51–{total} of {total:,} · page 2 of 2" in last
    assert _rows(client.get(_links(last)["first"]).text) == _rows(first)
    full = client.get(_api(wb, "events"), params={"limit": 500}).json()["rows"]
    links = [f"/cases/{wb.case_id}/events/{r['file_id']}/{r['seq']}" for r in full]
    assert _rows(first) + _rows(second) == links


def test_the_events_api_pages_backward(wb: Web) -> None:
    client = wb.clients["reader"]
    one = client.get(_api(wb, "events"), params={"limit": 5}).json()
    assert one["prev_cursor"] is None
    two = client.get(_api(wb, "events"), params={"limit": 5, "cursor": one["next_cursor"]}).json()
    back = client.get(
        _api(wb, "events"),
        params={"limit": 5, "cursor": two["prev_cursor"], "direction": "prev"},
    ).json()
    assert back["rows"] == one["rows"] and back["prev_cursor"] is None
    last = client.get(_api(wb, "events"), params={"limit": 5, "direction": "prev"}).json()
    assert last["next_cursor"] is None and last["rows"]
    bad = client.get(_api(wb, "events"), params={"direction": "sideways"})
    assert bad.status_code == 422


def test_first_steps_on_an_empty_search_and_an_empty_case(wb: Web) -> None:
    client = wb.clients["analyst"]
    html = client.get(_page(wb)).text
    assert 'id="first-steps"' in html and 'href="/help/query-language"' in html
    assert 'id="empty-case"' not in html
    ids = re.findall(r'search\?q=EventID%3A(\d+)"', html)
    assert "4768" in ids
    hosts = re.findall(r'search\?(filter=computer[^"]+)">([^<]+)</a>', html)
    target, host = next((t, h) for t, h in hosts if h != "(none)")
    rows = client.get(f"{_api(wb, 'events')}?{target.replace('&amp;', '&')}").json()["rows"]
    assert rows and {r["computer"] for r in rows} == {host}
    assert "Service installed" in html and "rule=6f1c1a4e-0000-4000-8000-00000000b045" in html
    empty = client.post("/api/cases", json={"name": "empty"}).json()["id"]
    for url in (f"/cases/{empty}/search", f"/cases/{empty}"):
        page = client.get(url).text
        assert 'id="empty-case"' in page and f"/cases/{empty}/evidence" in page
    assert client.get(f"/api/cases/{empty}/histogram").json()["buckets"] == []


def test_the_help_page_examples_are_valid_queries(wb: Web) -> None:
    html = wb.clients["reader"].get("/help/query-language").text
    examples = re.findall(r'<code class="example">(.*?)</code>', html)
    assert len(examples) >= 15
    for text in examples:
        unescaped = text.replace("&lt;", "<").replace("&gt;", ">").replace("&#34;", '"')
        compile_query(unescaped.replace("&amp;", "&"), marks=no_marks)  # syntax only
    assert wb.anonymous.get("/help/query-language", follow_redirects=False).status_code == 303


def test_dashboard_draws_the_case_timeline(wb: Web) -> None:
    client = wb.clients["reader"]
    html = client.get(f"/cases/{wb.case_id}").text
    assert f'data-src="/api/cases/{wb.case_id}/histogram"' in html
    assert "<rect" not in html  # no more bars for non-empty buckets only
    assert "histogram" not in client.get(f"/api/cases/{wb.case_id}").json()
    assert BIDI not in html

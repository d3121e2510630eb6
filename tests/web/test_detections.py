"""Detections as analysts read them: by rule (hits, hosts, first/last seen), the ATT&CK
matrix, the detection timeline, one rule, the Navigator layer; filters and bad input.

One real app (SQLite, chDB, workers) with SigmaHQ rules (process creation and Security)
and two hostile rules imported before attack samples and a hostile NDJSON file are
uploaded, so every detection comes from the real ingest.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from casescope.detect.attack import TACTICS
from casescope.model.tables import Detection
from casescope.model.users import User
from casescope.services import detection_timeline
from casescope.services.detections import DetectionFilter
from casescope.services.users import set_timezone
from casescope.store.rulesets import import_rules
from casescope.store.summary import summarise
from tests.web.conftest import (
    JS_URL,
    XSS,
    Web,
    open_web,
    sample_uploads,
    uploads,
)
from tests.web.detections_case import (
    HOSTILE_UID,
    SAMPLES,
    all_rules,
    api,
    get_json,
    hostile_ndjson,
    rules_folder,
    stored_detections,
)


@pytest.fixture(scope="module")
def det(
    tmp_path_factory: pytest.TempPathFactory, attack_samples: Path, sigma_dir: Path
) -> Iterator[Web]:
    home = tmp_path_factory.mktemp("dethome")
    files = sample_uploads(attack_samples, SAMPLES) + uploads(
        hostile_ndjson(home / "hostile.ndjson")
    )

    def prepare(web: Web) -> None:
        import_rules(web.db, web.settings, rules_folder(sigma_dir, home / "rules"), "sigmahq")

    with open_web(home, files, case_name="detections case", prepare=prepare) as web:
        yield web


# ---------------------------------------------------------------- by rule


def test_rules_with_hits_hosts_and_first_last_seen(det: Web) -> None:
    client = det.clients["reader"]
    truth = stored_detections(det)
    rules = all_rules(det, client)
    assert len(rules) > 40 and sum(r["hits"] for r in rules) == len(truth)
    by_uid = {r["rule_uid"]: r for r in rules}
    for uid, hits in Counter(t[0] for t in truth).items():
        assert by_uid[uid]["hits"] == hits
    # hosts: the computers of the hit events, as the index has them
    some = next(r for r in rules if len(r["hosts"]) == 1 and r["hits"] > 2)
    events = get_json(client, f"/api/cases/{det.case_id}/events", rule=some["rule_uid"], limit=500)
    assert {e["computer"] for e in events["rows"]} == {some["hosts"][0]["host"]}
    assert some["hosts"][0]["hits"] == some["hits"]
    times = sorted(e["ts"] for e in events["rows"])
    assert some["first_seen"][:19] == times[0][:19].replace(" ", "T")
    assert some["last_seen"][:19] == times[-1][:19].replace(" ", "T")
    hits = [r["hits"] for r in rules]
    assert hits == sorted(hits, reverse=True)  # most hits first
    hostile = by_uid[HOSTILE_UID]
    assert hostile["hosts"] == [{"host": XSS, "hits": 1}]
    assert hostile["tactics"] == ["execution"] and hostile["techniques"] == ["T1059.007"]
    assert hostile["description"].startswith(XSS)


def test_filters_by_level_status_host_and_text(det: Web) -> None:
    client = det.clients["reader"]
    truth = stored_detections(det)
    high = all_rules(det, client, level="high")
    assert {r["level"] for r in high} <= {"high", "critical"}
    assert sum(r["hits"] for r in high) == sum(1 for t in truth if t[1] in ("high", "critical"))
    exact = all_rules(det, client, levels=["low", "critical"])
    assert {r["level"] for r in exact} == {"low", "critical"}
    assert all_rules(det, client, levels="low,critical") == exact  # comma-separated too
    status = all_rules(det, client, status="test")
    assert status and {r["status"] for r in status} == {"test"}
    host = Counter(t[4] for t in truth).most_common(1)[0][0]
    on_host = all_rules(det, client, host=host)
    assert sum(r["hits"] for r in on_host) == sum(1 for t in truth if t[4] == host)
    assert all([h["host"] for h in r["hosts"]] == [host] for r in on_host)
    text = all_rules(det, client, q="HOSTILE TITLE")
    assert [r["rule_uid"] for r in text] == [HOSTILE_UID]
    described = all_rules(det, client, q="described")
    assert [r["rule_uid"] for r in described] == [HOSTILE_UID]
    combined = all_rules(det, client, level="high", host=host, status="test")
    assert all(r["level"] in ("high", "critical") and r["status"] == "test" for r in combined)


def test_filters_by_tactic_and_technique(det: Web) -> None:
    client = det.clients["reader"]
    execution = all_rules(det, client, tactic="execution")
    assert execution and all("execution" in r["tactics"] for r in execution)
    assert all_rules(det, client, tactic="TA0002") == execution  # by id too
    parent = all_rules(det, client, technique="t1059")  # any case; takes sub-techniques
    assert {t for r in parent for t in r["techniques"] if t.startswith("T1059.")}
    assert all(any(t.split(".")[0] == "T1059" for t in r["techniques"]) for r in parent)
    sub = all_rules(det, client, technique="T1059.007")
    assert HOSTILE_UID in {r["rule_uid"] for r in sub}
    assert all("T1059.007" in r["techniques"] for r in sub)
    unmapped = all_rules(det, client, tactic="none", technique="none")
    assert "7a1c0000-0000-4000-8000-00000000b00b" in {r["rule_uid"] for r in unmapped}
    assert all(not r["tactics"] and not r["techniques"] for r in unmapped)


@pytest.mark.parametrize(
    "params",
    [
        {"level": "foo"},
        {"levels": "high,foo"},
        {"status": "stabel"},
        {"tactic": "exfil"},
        {"technique": "X1059"},
        {"technique": "T1059.1"},
    ],
)
@pytest.mark.parametrize("tail", ["", "/matrix", "/timeline", "/navigator"])
def test_bad_filters_are_a_400_with_the_reason(det: Web, tail: str, params: dict) -> None:
    r = det.clients["reader"].get(api(det, tail), params=params)
    assert r.status_code == 400, r.text
    assert str(next(iter(params.values()))).split(",")[-1] in r.json()["detail"]


def test_other_bad_input(det: Web) -> None:
    client = det.clients["reader"]
    for tail, params in [
        ("", {"sort": "nope"}),
        ("", {"offset": -1}),
        ("/timeline", {"limit": 0}),
        ("/timeline", {"limit": 100_000}),
        ("/timeline", {"rule_id": "x"}),
        ("/rules/abc", {}),
    ]:
        assert client.get(api(det, tail), params=params).status_code == 422, (
            tail,
            params,
        )
    assert client.get(api(det, "/timeline"), params={"cursor": "bm9wZQ"}).status_code == 400
    assert client.get(api(det, "/rules/999999")).status_code == 404


def test_access_other_cases_and_anonymous(det: Web) -> None:
    outsider = det.clients["outsider"]
    for tail in ("", "/matrix", "/timeline", "/navigator", "/rules/1"):
        assert outsider.get(api(det, tail)).status_code == 403
        assert det.clients["reader"].get(f"/api/cases/9999/detections{tail}").status_code == 404
        assert det.anonymous.get(api(det, tail)).status_code == 401
    for page in ("", "/timeline", "/rules/1"):
        assert outsider.get(f"/cases/{det.case_id}/detections{page}").status_code == 403
    other = outsider.post("/api/cases", json={"name": "outsider's case"}).json()["id"]
    assert get_json(outsider, f"/api/cases/{other}/detections")["total_rules"] == 0
    assert get_json(outsider, f"/api/cases/{other}/detections/timeline")["hits"] == []
    uid_rule = get_json(det.clients["reader"], api(det))["rules"][0]
    elsewhere = get_json(outsider, f"/api/cases/{other}/detections/rules/{uid_rule['id']}")
    assert elsewhere["hits"] == 0 and elsewhere["hosts"] == []  # no hits of the other case


# ---------------------------------------------------------------- matrix


def test_matrix_columns_cells_and_drill_down(det: Web) -> None:
    client = det.clients["reader"]
    matrix = get_json(client, api(det, "/matrix"))
    names = [c["tactic"] for c in matrix["columns"]]
    assert names[: len(TACTICS)] == [t.short for t in TACTICS]
    execution = next(c for c in matrix["columns"] if c["tactic"] == "execution")
    rules = all_rules(det, client, tactic="execution")
    assert execution["hits"] == sum(r["hits"] for r in rules)
    assert execution["rules"] == len(rules)
    for cell in execution["techniques"]:
        technique = cell["technique"] or "none"
        drilled = all_rules(det, client, tactic="execution", technique=technique)
        exact = [
            r for r in drilled if (cell["technique"] in r["techniques"]) or not r["techniques"]
        ]
        assert cell["hits"] == sum(r["hits"] for r in exact), cell
        if cell["technique"]:
            assert cell["url"] == (
                "https://attack.mitre.org/techniques/" + cell["technique"].replace(".", "/") + "/"
            )
    unmapped = all_rules(det, client, tactic="none", technique="none")
    assert matrix["unmapped_hits"] == sum(r["hits"] for r in unmapped) > 0
    high = get_json(client, api(det, "/matrix"), level="critical")
    assert sum(c["hits"] for c in high["columns"]) < sum(c["hits"] for c in matrix["columns"])


# ---------------------------------------------------------------- timeline


def _timeline(client: TestClient, det: Web, limit: int, **params: object) -> list[dict]:
    rows, cursor = [], None
    while True:
        page = get_json(client, api(det, "/timeline"), limit=limit, cursor=cursor, **params)
        rows += page["hits"]
        cursor = page["next_cursor"]
        if cursor is None:
            return rows
        assert len(page["hits"]) == limit


def test_timeline_pages_are_complete_in_time_order_with_summaries(det: Web) -> None:
    client = det.clients["reader"]
    truth = stored_detections(det)
    rows = _timeline(client, det, 37)
    assert Counter((r["file_id"], r["seq"], r["rule_uid"]) for r in rows) == Counter(
        (t[6], t[7], t[0]) for t in truth
    )
    times = [r["ts"] for r in rows]
    assert times == sorted(times)
    for row in rows[:: max(1, len(rows) // 15)]:
        event = get_json(client, f"/api/cases/{det.case_id}/events/{row['file_id']}/{row['seq']}")
        expected = summarise(
            event["channel"], event["provider"], event["event_id"], event["fields"]
        )
        assert row["summary"] == expected and row["computer"] == event["computer"]
    assert any(r["summary"] for r in rows)


def test_timeline_filters_like_the_rules(det: Web) -> None:
    client = det.clients["reader"]
    rules = all_rules(det, client, level="high", tactic="execution")
    rows = _timeline(client, det, 500, level="high", tactic="execution")
    assert Counter(r["rule_uid"] for r in rows) == {r["rule_uid"]: r["hits"] for r in rules}
    one = rules[0]
    by_rule = _timeline(client, det, 500, rule_id=one["id"])
    assert {r["rule_uid"] for r in by_rule} == {one["rule_uid"]} and len(by_rule) == one["hits"]


def test_streamed_timeline_in_small_chunks_is_the_paged_one(det: Web) -> None:
    state = det.app.state.web
    paged = _timeline(det.clients["reader"], det, 500)
    filters = DetectionFilter(det.case_id)
    streamed = list(detection_timeline.iter_timeline(state.db, state.index.use, filters, chunk=7))
    assert [(r.file_id, r.seq, r.rule_uid, r.summary) for r in streamed] == [
        (r["file_id"], r["seq"], r["rule_uid"], r["summary"]) for r in paged
    ]


def test_detections_stored_without_their_host_get_it_from_the_index(det: Web) -> None:
    db = det.db
    before = {(t[6], t[7], t[0]): t[4] for t in stored_detections(det)}
    with db.session() as session:
        session.execute(
            update(Detection).where(Detection.case_id == det.case_id).values(computer=None)
        )
    detection_timeline._FILLED.discard(det.case_id)
    rules = get_json(det.clients["reader"], api(det))["rules"]
    assert all(h["host"] for r in rules for h in r["hosts"])
    assert {(t[6], t[7], t[0]): t[4] for t in stored_detections(det)} == before
    with db.read() as session:
        missing = select(func.count()).where(Detection.computer.is_(None))
        assert session.scalar(missing.select_from(Detection)) == 0


# ---------------------------------------------------------------- one rule, Navigator layer


def test_rule_details_with_logic_and_hits(det: Web) -> None:
    client = det.clients["reader"]
    (hostile,) = all_rules(det, client, q=HOSTILE_UID)
    rule = get_json(client, api(det, f"/rules/{hostile['id']}"))
    assert rule["title"] == f"{XSS} hostile title" and rule["level"] == "critical"
    assert rule["author"] == XSS and rule["references"] == [JS_URL, "https://example.com/ref"]
    assert rule["detection"].splitlines() == [
        "selection:",
        "  Message|contains: onerror",
        "condition: selection",
    ]
    assert "product: windows" in rule["logsource"]
    assert rule["tags"] == ["attack.execution", "attack.t1059.007", "attack.g0016", "cve.2021-1234"]
    assert rule["hits"] == 1 and rule["source"] == "sigmahq" and rule["enabled"]


def test_navigator_layer_download(det: Web) -> None:
    client = det.clients["reader"]
    r = client.get(api(det, "/navigator"))
    assert r.status_code == 200
    assert "attachment" in r.headers["content-disposition"]
    layer = r.json()
    assert layer["versions"]["layer"] == "4.5" and layer["domain"] == "enterprise-attack"
    assert layer["name"] == "casescope: detections case"
    scores = {t["techniqueID"]: t["score"] for t in layer["techniques"]}
    assert all(re.fullmatch(r"T\d{4}(\.\d{3})?", t) for t in scores)
    rules = all_rules(det, client)
    for technique in ("T1059.007", *list(scores)[:5]):
        expected = sum(r["hits"] for r in rules if technique in r["techniques"])
        assert scores[technique] == expected
    assert layer["gradient"]["maxValue"] == max(scores.values())
    filtered = client.get(api(det, "/navigator"), params={"level": "critical"}).json()
    assert len(filtered["techniques"]) < len(layer["techniques"])


def test_openapi_describes_every_detection_route(det: Web) -> None:
    spec = det.clients["reader"].get("/openapi.json").json()
    for tail in ("", "/matrix", "/timeline", "/navigator", "/rules/{rule_id}"):
        get = spec["paths"]["/api/cases/{case_id}/detections" + tail]["get"]
        schema = get["responses"]["200"]["content"]["application/json"]["schema"]
        assert "$ref" in schema, tail


# ---------------------------------------------------------------- pages


def test_pages_render_filters_and_drill_down_links(det: Web) -> None:
    client = det.clients["reader"]
    html = client.get(f"/cases/{det.case_id}/detections").text
    assert 'id="attack-matrix"' in html and 'id="detections"' in html
    assert "https://attack.mitre.org/techniques/T1059/007/" in html
    assert f"/cases/{det.case_id}/detections?tactic=execution&amp;technique=T1059.007" in html
    assert "Technique names are not available offline" in html
    drilled = client.get(
        f"/cases/{det.case_id}/detections", params={"tactic": "execution", "technique": "T1059.007"}
    ).text
    (hostile,) = all_rules(det, client, q=HOSTILE_UID)
    rule_ids = re.findall(r'<tr data-rule="(\d+)">', drilled)
    assert str(hostile["id"]) in rule_ids and 'class="cell edge-critical selected"' in drilled
    rule_page = client.get(f"/cases/{det.case_id}/detections/rules/{hostile['id']}")
    assert rule_page.status_code == 200 and 'id="rule-detection"' in rule_page.text
    assert f"/cases/{det.case_id}/events/" in rule_page.text
    timeline = client.get(f"/cases/{det.case_id}/detections/timeline", params={"level": "high"})
    assert timeline.status_code == 200 and 'class="summary"' in timeline.text
    assert client.get(f"/cases/{det.case_id}/detections/rules/999999").status_code == 404


def test_pages_paged_by_cursor(det: Web) -> None:
    client = det.clients["reader"]
    url = f"/cases/{det.case_id}/detections/timeline"
    first = client.get(url).text
    link = re.search(r'id="next-page" href="([^"]+)"', first)
    assert link, "more than a page of hits"
    second = client.get(link.group(1).replace("&amp;", "&")).text
    assert 'id="first-page"' in second
    first_times = re.findall(r'<td class="time">([^<]+)</td>', first)
    second_times = re.findall(r'<td class="time">([^<]+)</td>', second)
    assert len(first_times) == 100 and first_times[-1] <= second_times[0]


@pytest.mark.parametrize(
    ("page", "params"),
    [
        ("", {"level": "foo"}),
        ("", {"technique": "<b>x</b>"}),
        ("/timeline", {"tactic": "nope"}),
        ("/timeline", {"cursor": "bm9wZQ"}),
    ],
)
def test_bad_filters_in_pages_say_why_in_the_layout(det: Web, page: str, params: dict) -> None:
    r = det.clients["reader"].get(f"/cases/{det.case_id}/detections{page}", params=params)
    assert r.status_code == 400
    assert 'class="error" role="alert"' in r.text and "<b>x</b>" not in r.text
    assert 'id="detection-filters"' in r.text  # the form stays, to fix the value


def test_hostile_rule_and_event_values_stay_inert(det: Web) -> None:
    client = det.clients["reader"]
    (hostile,) = all_rules(det, client, q=HOSTILE_UID)
    pages = [
        client.get(f"/cases/{det.case_id}/detections").text,
        client.get(f"/cases/{det.case_id}/detections", params={"q": XSS}).text,
        client.get(f"/cases/{det.case_id}/detections/timeline").text,
        client.get(f"/cases/{det.case_id}/detections/rules/{hostile['id']}").text,
    ]
    for html in pages:
        assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
        assert f'href="{JS_URL}"' not in html and "\u202e" not in html
    rule_page = pages[3]
    assert "[U+202E]" in rule_page  # the bidi control made visible
    assert JS_URL in rule_page  # shown as text, not as a link
    assert '<a class="plain" href="https://example.com/ref"' in rule_page
    assert "host=%3Cimg+src%3Dx+onerror%3Dalert%281%29%3E" in pages[0]  # the host's link


def test_csp_still_holds_on_detection_pages(det: Web) -> None:
    r = det.clients["reader"].get(f"/cases/{det.case_id}/detections")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "<script>" not in r.text and " style=" not in r.text


def test_times_in_the_users_zone(det: Web) -> None:
    db = det.db
    with db.read() as session:
        admin_id = session.scalar(select(User.id).where(User.username == "admin"))
    set_timezone(db, admin_id, "Asia/Tokyo")
    try:
        client = det.clients["admin"]
        html = client.get(f"/cases/{det.case_id}/detections").text
        assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d JST</td>", html)
        timeline = client.get(f"/cases/{det.case_id}/detections/timeline").text
        assert re.search(r'<td class="time">[^<]+ JST</td>', timeline)
        reader = det.clients["reader"].get(f"/cases/{det.case_id}/detections/timeline").text
        assert re.search(r'<td class="time">[^<]+ UTC</td>', reader)
    finally:
        set_timezone(db, admin_id, "UTC")

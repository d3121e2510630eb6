"""The event workbench through the real app: event page (fields, pivots, rules, IOC hits,
context, previous/next), process trees and activity, logon sessions — API and pages.

One app with three real Sigma rules and two IOCs loaded before real attack samples are
uploaded (the mimikatz PowerShell of babyshark, mimikatz.exe opening lsass, a relayed NTLM
logon with its session, MalSeclogon logged by both Sysmon and 4688), plus hostile
EVTX-shaped NDJSON whose process and logon fields carry XSS, bidi and javascript: payloads.
"""

from __future__ import annotations

import html as htmllib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest

from casescope.services.iocs import add_iocs
from casescope.store.query import parse_query
from casescope.store.query_ast import Literal, Match
from casescope.store.rulesets import import_rules
from tests.web.conftest import (
    BIDI,
    JS_URL,
    XSS,
    Web,
    open_web,
    sample_uploads,
    uploads,
)

SAMPLES = (
    "Credential Access/babyshark_mimikatz_powershell.evtx",
    "Credential Access/sysmon_10_lsass_mimikatz_sekurlsa_logonpasswords.evtx",
    "Credential Access/tutto_malseclogon.evtx",
    "Privilege Escalation/NTLM2SelfRelay-med0x2e-security_4624_4688.evtx",
)
RULES = (
    "process_creation/proc_creation_win_powershell_non_interactive_execution.yml",
    "process_creation/proc_creation_win_susp_local_system_owner_account_discovery.yml",
    "process_access/proc_access_win_hktl_generic_access.yml",
)
POWERSHELL_RULE = "Non Interactive PowerShell Process Spawned"
SYSMON = "Microsoft-Windows-Sysmon/Operational"
HOSTILE_PARENT = "{AAAAAAAA-1111-2222-3333-444444444444}"
MIMIKATZ_PS = "EventID:1 AND Image:*\\powershell.exe AND CommandLine:Powershell"


def _evtx_json(
    event_id: int, channel: str, provider: str, ts: str, data: dict, computer: str = XSS
) -> str:
    system = {
        "Provider": {"#attributes": {"Name": provider}},
        "EventID": event_id,
        "TimeCreated": {"#attributes": {"SystemTime": ts}},
        "EventRecordID": 1,
        "Channel": channel,
        "Computer": computer,
    }
    return json.dumps({"Event": {"System": system, "EventData": data}})


def hostile_ndjson(path: Path) -> Path:
    """Sysmon 1 parent and child, a Sysmon 3 of the parent and a 4624, every shown value
    hostile."""
    sysmon = ("Microsoft-Windows-Sysmon",)
    lines = [
        _evtx_json(1, SYSMON, *sysmon, "2024-05-01T10:00:00Z", {
            "ProcessGuid": HOSTILE_PARENT, "ProcessId": "100", "Image": XSS,
            "CommandLine": f"{XSS} {BIDI}", "User": XSS, "LogonId": "0x1234",
            "ParentProcessGuid": "{BBBBBBBB-1111-2222-3333-444444444444}",
            "ParentProcessId": "99", "ParentImage": BIDI, "ParentCommandLine": JS_URL}),
        _evtx_json(1, SYSMON, *sysmon, "2024-05-01T10:00:05Z", {
            "ProcessGuid": "{CCCCCCCC-1111-2222-3333-444444444444}", "ProcessId": "101",
            "Image": "C:\\x\\child.exe", "CommandLine": JS_URL, "User": BIDI,
            "ParentProcessGuid": HOSTILE_PARENT, "ParentProcessId": "100"}),
        _evtx_json(3, SYSMON, *sysmon, "2024-05-01T10:00:06Z", {
            "ProcessGuid": HOSTILE_PARENT, "ProcessId": "100", "Image": XSS,
            "DestinationIp": "10.9.9.9", "DestinationHostname": XSS}),
        _evtx_json(4624, "Security", "Microsoft-Windows-Security-Auditing",
                   "2024-05-01T09:59:00Z", {
            "TargetUserName": XSS, "TargetDomainName": BIDI, "TargetLogonId": "0x1234",
            "LogonType": "10", "IpAddress": XSS, "WorkstationName": JS_URL,
            "LogonProcessName": XSS, "AuthenticationPackageName": BIDI}),
    ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


WIDE_CHILDREN = 10_000


def wide_ndjson(path: Path) -> Path:
    """One process that started 10,000 others (Sysmon 1 events on host WIDE)."""
    parent = "{DDDDDDDD-0000-0000-0000-000000000000}"
    sysmon = (SYSMON, "Microsoft-Windows-Sysmon")
    lines = [
        _evtx_json(
            1,
            *sysmon,
            "2024-06-01T00:00:00Z",
            {"ProcessGuid": parent, "ProcessId": "4000", "Image": "C:\\spawner.exe"},
            "WIDE",
        )
    ]
    for n in range(WIDE_CHILDREN):
        stamp = f"2024-06-01T00:{n // 6000:02d}:{n // 100 % 60:02d}.{n % 100:02d}0000Z"
        lines.append(
            _evtx_json(
                1,
                *sysmon,
                stamp,
                {
                    "ProcessGuid": f"{{EEEEEEEE-0000-0000-0000-{n:012d}}}",
                    "ProcessId": str(5000 + n),
                    "Image": f"C:\\child{n}.exe",
                    "ParentProcessGuid": parent,
                    "ParentProcessId": "4000",
                },
                "WIDE",
            )
        )
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def wb(
    tmp_path_factory: pytest.TempPathFactory, attack_samples: Path, sigma_dir: Path
) -> Iterator[Web]:
    home = tmp_path_factory.mktemp("wbhome")
    rules = home / "rules"
    rules.mkdir()
    for rule in RULES:
        shutil.copy(sigma_dir / "rules" / "windows" / rule, rules / Path(rule).name)
    made = (hostile_ndjson(home / "hostile.ndjson"), wide_ndjson(home / "wide.ndjson"))
    files = sample_uploads(attack_samples, SAMPLES) + uploads(*made)

    def prepare(web: Web) -> None:
        import_rules(web.db, web.settings, rules, "wb")
        other = web.clients["outsider"].post("/api/cases", json={"name": "other"}).json()["id"]
        web.other_case = other  # type: ignore[attr-defined]
        add_iocs(web.db, web.settings, web.case_id, ["192.168.1.219", "whoami.exe"])

    with open_web(home, files, case_name="wb case", prepare=prepare) as web:
        yield web


def api(wb: Web, tail: str) -> str:
    return f"/api/cases/{wb.case_id}/{tail}"


def find(wb: Web, q: str, **params: str) -> dict:
    rows = wb.clients["analyst"].get(api(wb, "events"), params={"q": q, **params}).json()["rows"]
    assert rows, f"nothing matches {q}"
    return rows[0]


def event_path(row: dict) -> str:
    return f"events/{row['file_id']}/{row['seq']}"


def hrefs(page: str, css_class: str) -> list[str]:
    found = re.findall(rf'class="[^"]*{css_class}[^"]*" href="([^"]+)"', page)
    return [htmllib.unescape(h) for h in found]


def assert_inert(page: str) -> None:
    assert "<img src=x onerror" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert not re.search(r"""(href|src)\s*=\s*["']?\s*javascript:""", page, re.I)
    assert "\u202e" not in page and "[U+202E]" in page


# ---------------------------------------------------------------- the event page


def test_event_page_fields_rules_and_ioc_hits(wb: Web) -> None:
    ps = find(wb, MIMIKATZ_PS)
    page = wb.clients["analyst"].get(f"/cases/{wb.case_id}/{event_path(ps)}").text
    table = page[page.index('id="event-fields"') :]
    for name in ("CommandLine", "ParentImage", "ProcessGuid", "computer", "event_id"):
        assert f"<th>{name}</th>" in table
    assert "C:\\Windows\\System32\\cmd.exe" in table
    rules = page[page.index('id="rules"') : page.index('id="event-fields"')]
    assert POWERSHELL_RULE in rules and "level-low" in rules
    assert "T1059.001" in rules and "execution" in rules
    assert "condition: selection" in rules  # the rule's detection logic
    (all_hits,) = hrefs(rules, "rule-hits")
    assert parse_qsl(urlsplit(all_hits).query)[0][0] == "rule"
    hits = wb.clients["analyst"].get(f"/cases/{wb.case_id}/search?{urlsplit(all_hits).query}")
    assert hits.status_code == 200 and f"/{event_path(ps)}" in hits.text
    whoami = find(wb, "EventID:1 AND Image:*\\whoami.exe")
    page = wb.clients["analyst"].get(f"/cases/{wb.case_id}/{event_path(whoami)}").text
    iocs = page[page.index('id="ioc-hits"') :]
    assert "whoami.exe" in iocs and "filename" in iocs and "Image" in iocs
    assert '<pre id="raw">{\n' in page  # pretty-printed raw JSON, in a <details>


def test_findings_api(wb: Web) -> None:
    ps = find(wb, MIMIKATZ_PS)
    body = wb.clients["analyst"].get(api(wb, f"{event_path(ps)}/findings")).json()
    (rule,) = body["rules"]
    assert rule["title"] == POWERSHELL_RULE and rule["level"] == "low"
    assert rule["techniques"] == ["T1059.001"] and rule["tactics"] == ["execution"]
    assert "condition:" in rule["detection"] and rule["description"]
    logon = find(wb, "EventID:4624 AND IpAddress:192.168.1.219")
    hits = wb.clients["analyst"].get(api(wb, f"{event_path(logon)}/findings")).json()["ioc_hits"]
    assert {(h["value"], h["field"]) for h in hits} == {("192.168.1.219", "IpAddress")}


def test_every_pivot_lands_on_a_search_that_finds_or_drops_the_event(wb: Web) -> None:
    client = wb.clients["analyst"]
    for q in (MIMIKATZ_PS, "EventID:4624 AND IpAddress:192.168.1.219", '"onerror"'):
        event = find(wb, q)
        page = client.get(f"/cases/{wb.case_id}/{event_path(event)}", params={"q": q}).text
        key = (event["file_id"], event["seq"])
        kinds = {"pivot-for": True, "pivot-out": False, "pivot-any": True}
        for kind, kept in kinds.items():
            links = hrefs(page[page.index('id="event-fields"') :], kind)
            assert len(links) >= 8, kind
            for link in links:
                params = parse_qs(urlsplit(link).query)
                if kind != "pivot-any":  # narrows the search: one more pill
                    assert params["q"] == [q] and len(params["filter"]) == 1
                found = client.get(api(wb, "events"), params={**params, "limit": 500}).json()
                keys = {(r["file_id"], r["seq"]) for r in found["rows"]}
                assert (key in keys) is kept, (kind, params)


def test_pivot_of_a_field_the_query_cannot_name_searches_its_value(wb: Web) -> None:
    event = find(wb, '"onerror"')
    page = wb.clients["analyst"].get(f"/cases/{wb.case_id}/{event_path(event)}").text
    row = page[page.index("<th>computer</th>") :].split("</tr>", 1)[0]
    (link,) = hrefs(row, "pivot-for")
    (pill,) = parse_qs(urlsplit(link).query)["filter"]
    assert parse_query(pill) == Match("Computer", Literal(XSS))


def test_context_around_the_event_on_its_computer(wb: Web) -> None:
    client = wb.clients["analyst"]
    ps = find(wb, MIMIKATZ_PS)
    body = client.get(api(wb, f"{event_path(ps)}/context"), params={"minutes": 2}).json()
    keys = [(r["file_id"], r["seq"]) for r in body["rows"]]
    assert (ps["file_id"], ps["seq"]) in keys and body["minutes"] == 2
    assert {r["computer"] for r in body["rows"]} == {ps["computer"]}
    assert body["total"] == len(body["rows"]) and body["earlier"] is None
    wide = client.get(api(wb, f"{event_path(ps)}/context"), params={"minutes": 1440}).json()
    assert wide["total"] > body["total"]
    assert [r["ts"] for r in wide["rows"]] == sorted(r["ts"] for r in wide["rows"])
    for bad in ({"minutes": 0}, {"minutes": 1441}, {"minutes": "x"}):
        assert client.get(api(wb, f"{event_path(ps)}/context"), params=bad).status_code == 422
    assert (
        client.get(api(wb, f"{event_path(ps)}/context"), params={"before": "zz"}).status_code == 400
    )
    both = {"before": body["rows"][0]["ts"], "after": "x"}
    assert client.get(api(wb, f"{event_path(ps)}/context"), params=both).status_code == 400


def test_context_pages_by_keyset(wb: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    client = wb.clients["analyst"]
    ps = find(wb, MIMIKATZ_PS)
    url = api(wb, f"{event_path(ps)}/context")
    complete = client.get(url, params={"minutes": 1440}).json()
    assert complete["earlier"] is None and complete["later"] is None  # all fit in one view
    assert len(complete["rows"]) == complete["total"] > 20

    def keys(rows: list[dict]) -> list[tuple[int, int]]:
        return [(r["file_id"], r["seq"]) for r in rows]

    monkeypatch.setattr("casescope.services.event_detail.CONTEXT_SIDE", 3)
    monkeypatch.setattr("casescope.services.event_detail.CONTEXT_PAGE", 4)
    first = client.get(url, params={"minutes": 1440}).json()
    assert len(first["rows"]) == 7 and keys(first["rows"])[3] == (ps["file_id"], ps["seq"])
    walked = keys(first["rows"])
    cursor = first["earlier"]
    while cursor:
        page = client.get(url, params={"minutes": 1440, "before": cursor}).json()
        assert len(page["rows"]) <= 4
        walked = keys(page["rows"]) + walked
        cursor = page["earlier"]
    cursor = first["later"]
    while cursor:
        page = client.get(url, params={"minutes": 1440, "after": cursor}).json()
        walked += keys(page["rows"])
        cursor = page["later"]
    assert walked == keys(complete["rows"])
    html = client.get(f"/cases/{wb.case_id}/{event_path(ps)}", params={"ctx_minutes": 1440}).text
    assert 'class="here"' in html and 'id="context-earlier"' in html
    (earlier,) = re.findall(r'id="context-earlier" href="([^"]+)"', html)
    back = client.get(f"/cases/{wb.case_id}/{event_path(ps)}{htmllib.unescape(earlier)}")
    assert back.status_code == 200 and 'id="context-later"' in back.text


def test_previous_and_next_follow_the_search(wb: Web) -> None:
    client = wb.clients["analyst"]
    q = "EventID:1 AND NOT Computer:WIDE"
    for params in ({"q": q}, {"q": q, "sort": "computer", "order": "desc"}):
        rows = client.get(api(wb, "events"), params={**params, "limit": 500}).json()["rows"]
        assert len(rows) >= 3
        for i in (0, 1, len(rows) - 1):
            body = client.get(api(wb, f"{event_path(rows[i])}/neighbours"), params=params).json()
            prev = (body["previous"] or {}).get("seq"), (body["previous"] or {}).get("file_id")
            want = (rows[i - 1]["seq"], rows[i - 1]["file_id"]) if i else (None, None)
            assert prev == want
            nxt = body["next"]
            if i + 1 < len(rows):
                assert (nxt["file_id"], nxt["seq"]) == (rows[i + 1]["file_id"], rows[i + 1]["seq"])
            else:
                assert nxt is None
    second = client.get(api(wb, "events"), params={"q": "EventID:1"}).json()["rows"][1]
    html = client.get(f"/cases/{wb.case_id}/{event_path(second)}", params={"q": "EventID:1"}).text
    (back,) = hrefs(html.replace('id="back-to-search" ', 'class="back" '), "back")
    assert dict(parse_qsl(urlsplit(back).query)) == {"q": "EventID:1"}
    assert re.search(r'id="next-event" rel="next" href="[^"]+\?q=EventID%3A1"', html)
    bad = client.get(f"/cases/{wb.case_id}/{event_path(second)}", params={"q": "a:("})
    assert bad.status_code == 200 and "previous/next unavailable" in bad.text


# ---------------------------------------------------------------- process trees


def _nodes(node: dict) -> Iterator[dict]:
    yield node
    for child in node["children"]:
        yield from _nodes(child)


def test_tree_of_the_mimikatz_powershell(wb: Web) -> None:
    ps = find(wb, MIMIKATZ_PS)
    tree = wb.clients["analyst"].get(api(wb, f"{event_path(ps)}/process-tree")).json()
    root = tree["root"]
    assert root["inferred"] and root["image"].endswith("\\cmd.exe")  # not in the logs
    (focus,) = root["children"]
    assert focus["focus"] and focus["event"] == {"file_id": ps["file_id"], "seq": ps["seq"]}
    assert focus["detections"] == 1 and focus["detection_level"] == "low"
    kids = focus["children"]
    assert [k["image"].rsplit("\\", 1)[1] for k in kids] == ["whoami.exe", "whoami.exe"]
    assert all(k["detections"] == 1 for k in kids) and tree["nodes"] == 4
    whoami = kids[0]["event"]
    up = (
        wb.clients["analyst"]
        .get(api(wb, f"events/{whoami['file_id']}/{whoami['seq']}/process-tree"))
        .json()
    )
    (parent,) = up["root"]["children"]
    assert parent["event"] == focus["event"] and parent["children"][0]["focus"]


def test_tree_links_4688_children_by_process_id_and_merges_twins(wb: Web) -> None:
    conhost = find(wb, "EventID:4688 AND NewProcessName:*\\conhost.exe")
    tree = wb.clients["analyst"].get(api(wb, f"{event_path(conhost)}/process-tree")).json()
    chain = list(_nodes(tree["root"]))
    images = [n["image"].rsplit("\\", 1)[-1] for n in chain]
    assert images == ["lsass.exe", "MalSeclogon.exe", "conhost.exe"]
    malseclogon = chain[1]
    assert malseclogon["source"] == "sysmon" and malseclogon["pid"] == 0x17B8
    assert malseclogon["guid"] and chain[0]["inferred"]  # lsass: named by the 4688 twin


def test_tree_from_an_event_that_names_its_process(wb: Web) -> None:
    access = find(wb, "EventID:10 AND SourceImage:*\\mimikatz.exe")
    tree = wb.clients["analyst"].get(api(wb, f"{event_path(access)}/process-tree")).json()
    assert tree["root"]["focus"] and tree["root"]["inferred"]
    assert tree["root"]["image"].endswith("mimikatz.exe") and tree["root"]["pid"] == 3588


def test_a_process_with_ten_thousand_children_gives_a_bounded_tree(wb: Web) -> None:
    client = wb.clients["analyst"]
    spawner = find(wb, "EventID:1 AND Image:*\\spawner.exe")
    tree = client.get(api(wb, f"{event_path(spawner)}/process-tree")).json()
    focus = tree["root"]
    assert focus["focus"] and tree["nodes"] == 300
    assert len(focus["children"]) == 299 and focus["more_children"] == WIDE_CHILDREN - 299
    assert focus["children"][0]["image"] == "C:\\child0.exe"  # the first started first
    small = client.get(api(wb, f"{event_path(spawner)}/process-tree"), params={"nodes": 10})
    assert small.json()["root"]["more_children"] == WIDE_CHILDREN - 9
    page = client.get(f"/cases/{wb.case_id}/{event_path(spawner)}/process-tree").text
    assert "9,701 more not shown" in page and page.count('<li class="proc') == 300
    (children,) = re.findall(r'href="([^"]+)">search its children', page)
    params = dict(parse_qsl(urlsplit(htmllib.unescape(children)).query))
    found = client.get(api(wb, "events"), params={**params, "limit": 1}).json()
    assert found["total"] == WIDE_CHILDREN and found["total_exact"]


def test_tree_bad_input(wb: Web) -> None:
    client = wb.clients["analyst"]
    logoff = find(wb, "EventID:4634")
    r = client.get(api(wb, f"{event_path(logoff)}/process-tree"))
    assert r.status_code == 400 and "names no process" in r.json()["detail"]
    page = client.get(f"/cases/{wb.case_id}/{event_path(logoff)}/process-tree")
    assert page.status_code == 400 and 'role="alert"' in page.text  # inside the layout
    assert "names no process" in page.text
    ps = find(wb, MIMIKATZ_PS)
    for bad in ({"depth": 0}, {"depth": 21}, {"nodes": 5}, {"nodes": 2001}, {"ancestors": 0}):
        assert client.get(api(wb, f"{event_path(ps)}/process-tree"), params=bad).status_code == 422
    assert client.get(api(wb, "events/999999/0/process-tree")).status_code == 404
    other = wb.other_case  # type: ignore[attr-defined]
    own = f"/api/cases/{other}/{event_path(ps)}/process-tree"
    assert wb.clients["outsider"].get(own).status_code == 404  # that event is not in its case
    assert wb.clients["outsider"].get(api(wb, f"{event_path(ps)}/process-tree")).status_code == 403


def test_process_activity_is_paged(wb: Web) -> None:
    client = wb.clients["analyst"]
    ps = find(wb, MIMIKATZ_PS)
    url = api(wb, f"{event_path(ps)}/process-activity")
    whole = client.get(url).json()
    assert whole["process"]["guid"] and whole["total"] == len(whole["rows"]) >= 10
    assert {7, 10} <= {r["event_id"] for r in whole["rows"]}  # image loads, lsass access
    seen, cursor = [], None
    while True:
        page = client.get(url, params={"limit": 4, **({"cursor": cursor} if cursor else {})}).json()
        seen += [(r["file_id"], r["seq"]) for r in page["rows"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [(r["file_id"], r["seq"]) for r in whole["rows"]]
    assert client.get(url, params={"cursor": "nonsense"}).status_code == 400


def test_tree_page(wb: Web) -> None:
    ps = find(wb, MIMIKATZ_PS)
    html = wb.clients["analyst"].get(f"/cases/{wb.case_id}/{event_path(ps)}/process-tree").text
    tree = html[html.index('id="process-tree"') : html.index('id="activity"')]
    assert "cmd.exe" in tree and "inferred" in tree and tree.count("whoami.exe") >= 2
    assert "level-low" in tree and 'class="proc focus' in tree
    assert 'id="activity-events"' in html


# ---------------------------------------------------------------- logon sessions


def test_logon_session_of_a_4624(wb: Web) -> None:
    client = wb.clients["analyst"]
    logon = find(wb, "EventID:4624 AND TargetLogonId:0x821aab")
    page = client.get(f"/cases/{wb.case_id}/{event_path(logon)}").text
    links = hrefs(page, "session-link")
    assert "0x821aab" in links[0]  # the session the logon opened comes before its caller's
    (link,) = [h for h in links if "0x821aab" in h]
    params = dict(parse_qsl(urlsplit(link).query))
    body = client.get(api(wb, "logon-sessions"), params=params).json()
    assert body["logon_event"] == {"file_id": logon["file_id"], "seq": logon["seq"]}
    assert body["start"] and body["end"] and body["elevated"]
    assert body["ip_address"] == "192.168.1.219" and body["user"].endswith("\\Administrator")
    assert body["logon_type"] == "3 (Network)"
    assert sorted(r["event_id"] for r in body["rows"]) == [4624, 4634, 4672]
    html = client.get(link).text
    assert "192.168.1.219" in html and 'id="session-events"' in html


def test_logon_session_bad_input(wb: Web) -> None:
    client = wb.clients["analyst"]
    url = api(wb, "logon-sessions")
    assert client.get(url, params={"computer": "x", "logon_id": "0x0"}).status_code == 400
    assert client.get(url, params={"computer": "x", "logon_id": "zz"}).status_code == 400
    assert client.get(url, params={"logon_id": "0x3e7"}).status_code == 422
    bad_time = {"computer": "x", "logon_id": "0x3e7", "at": "yesterday"}
    assert client.get(url, params=bad_time).status_code == 400
    empty = client.get(url, params={"computer": "nowhere", "logon_id": "0x3e7"}).json()
    assert empty["rows"] == [] and empty["well_known"] == "SYSTEM" and empty["start"] is None
    assert (
        wb.clients["outsider"].get(url, params={"computer": "x", "logon_id": "1"}).status_code
        == 403
    )


# ---------------------------------------------------------------- hostile values stay inert


def test_hostile_values_are_inert_on_every_workbench_page(wb: Web) -> None:
    client = wb.clients["analyst"]
    parent = find(wb, "EventID:1 AND ProcessId:100")
    child = find(wb, "EventID:1 AND ProcessId:101")
    logon = find(wb, "EventID:4624 AND TargetLogonId:0x1234")
    pages = [
        f"/cases/{wb.case_id}/{event_path(parent)}",
        f"/cases/{wb.case_id}/{event_path(child)}/process-tree",
        f"/cases/{wb.case_id}/{event_path(parent)}/process-tree",
    ]
    for url in pages:
        assert_inert(client.get(url).text)
    page = client.get(f"/cases/{wb.case_id}/{event_path(logon)}").text
    (link,) = hrefs(page, "session-link")
    html = client.get(link).text
    assert_inert(html)
    assert XSS not in html and "javascript:alert(1)" in html  # text, never a link
    tree = client.get(api(wb, f"{event_path(child)}/process-tree")).json()
    assert tree["root"]["image"] == BIDI  # the grandparent, as the parent's event names it
    assert tree["root"]["children"][0]["image"] == XSS  # data stays data in the API

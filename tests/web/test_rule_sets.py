"""Sigma rule sets over the admin API and page on a real app: import an uploaded zip, YAML
files or a server folder; list the sets and the rules with why one cannot run; enable and
disable by level, status, tag and set (the active compiled set follows); bad uploads and
bad selections are a 400/422 before anything is replaced; rule text is inert on the page."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from casescope.store.rulesets import load_active
from tests.web.conftest import Web, open_web, rule_folder
from tests.web.test_admin_pages import form

RULE = """\
title: {title}
id: 00000000-0000-0000-0000-00000000000{n}
status: {status}
level: {level}
tags: [{tags}]
logsource: {{category: process_creation, product: windows}}
detection:
  sel: {{CommandLine|contains: '{word}'}}
  condition: sel
"""
RULES = {
    "one.yml": RULE.format(
        title="one", n=1, status="stable", level="high", tags="attack.t1059.001", word="a"
    ),
    "two.yml": RULE.format(
        title="two", n=2, status="test", level="low", tags="attack.discovery", word="b"
    ),
    "three.yml": RULE.format(
        title="<script>alert(1)</script>",
        n=3,
        status="experimental",
        level="high",
        tags="attack.t1003",
        word="c",
    ),
    "bad.yml": "title: broken\ndetection: {sel: {a: 1}, condition: nope and}\n",
}


@pytest.fixture(scope="module")
def rules_web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    """An app without evidence whose uploaded rule zips may unpack to at most 1 MB."""
    home = tmp_path_factory.mktemp("ruleshome")
    env = {"CASESCOPE_WORKERS": "1", "CASESCOPE_RULES_MAX_UNPACKED_MB": "1"}
    with open_web(home, case_name="rules case", env=env) as app:
        yield app


def zipped(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def upload(client: TestClient, files: list[tuple[str, bytes]], name: str = "") -> object:
    parts = [("files", (fname, data)) for fname, data in files]
    return client.post("/api/rules/import", files=parts, data={"name": name} if name else {})


def browser_upload(client: TestClient, filename: str, data: bytes, name: str) -> Response:
    """A multipart body as Chromium sends the page's form: the folder input left empty is
    a part with `filename=""` and no bytes (httpx leaves such a filename out). FastAPI drops
    such a part; were it kept, a zip would come with a second file and be refused."""
    boundary = b"----casescope-test"
    parts = [(b"", b""), (filename.encode(), data)]
    body = b"".join(
        b'--%s\r\nContent-Disposition: form-data; name="files"; filename="%s"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n%s\r\n" % (boundary, fname, content)
        for fname, content in parts
    )
    body += b'--%s\r\nContent-Disposition: form-data; name="name"\r\n\r\n%s\r\n' % (
        boundary,
        name.encode(),
    )
    body += b"--%s--\r\n" % boundary
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary.decode()}"}
    return client.post("/api/rules/import", content=body, headers=headers)


def sets(web: Web) -> dict[str, dict]:
    return {s["source"]: s for s in web.clients["admin"].get("/api/rules/sets").json()}


def active_titles(web: Web) -> set[str]:
    active = load_active(web.settings, None)
    return {rule.title for rule in active.ruleset.rules} if active else set()


def test_import_a_zip_lists_the_set_and_why_a_rule_cannot_run(rules_web: Web) -> None:
    admin = rules_web.clients["admin"]
    rules = {f"win/{name}": text for name, text in RULES.items()}
    r = upload(admin, [("sigma-demo.zip", zipped(rules))])
    assert r.status_code == 200, r.text
    assert r.json() | {"warned": 0} == {
        "source": "sigma-demo",
        "rules": 3,
        "failed": 1,
        "warned": 0,
        "off": 0,
        "removed": {"rules": 0, "hits": 0, "cases": 0},
    }
    assert sets(rules_web)["sigma-demo"] | {"imported_at": None} == {
        "source": "sigma-demo", "rules": 4, "enabled": 3, "failed": 1, "warned": 0,
        "imported_at": None,
    }  # fmt: skip
    failed = admin.get("/api/rules", params={"source": "sigma-demo", "failed": True}).json()
    assert failed["total"] == 1 and failed["rules"][0]["path"] == "win/bad.yml"
    assert failed["rules"][0]["error"]
    tagged = admin.get("/api/rules", params={"tag": "attack.t1059.001"}).json()
    assert [r["title"] for r in tagged["rules"]] == ["one"]
    paged = admin.get("/api/rules", params={"limit": 2, "offset": 2}).json()
    assert paged["total"] == 4 and len(paged["rules"]) == 2
    assert "one" in active_titles(rules_web)


def test_enable_and_disable_by_level_status_tag_and_set(rules_web: Web) -> None:
    admin = rules_web.clients["admin"]
    upload(admin, [(n, t.encode()) for n, t in RULES.items()], name="toggle")
    scoped = {"sources": ["toggle"]}
    r = admin.post("/api/rules/disable", json={**scoped, "levels": ["high"]})
    assert r.status_code == 200 and r.json() == {"changed": 2}
    off = admin.get("/api/rules", params={"source": "toggle", "enabled": False}).json()
    assert {rule["title"] for rule in off["rules"]} == {"one", "<script>alert(1)</script>"}
    assert admin.post("/api/rules/enable", json={**scoped, "tags": ["attack.t1059*"]}).json() == {
        "changed": 1
    }
    assert admin.post("/api/rules/disable", json={**scoped, "statuses": ["test"]}).json() == {
        "changed": 1
    }
    assert sets(rules_web)["toggle"]["enabled"] == 1
    audit = admin.get("/api/audit", params={"action": "rules.disable"}).json()
    assert audit and audit[0]["actor"] == "web:admin"


def test_import_yaml_files_and_a_server_folder(rules_web: Web, tmp_path: Path) -> None:
    admin = rules_web.clients["admin"]
    r = upload(admin, [("one.yml", RULES["one.yml"].encode())], name="loose")
    assert r.status_code == 200 and r.json()["rules"] == 1
    zipped_set = zipped({"two.yml": RULES["two.yml"]})
    r = browser_upload(admin, "two.zip", zipped_set, name="zip-and-an-empty-input")
    assert r.status_code == 200 and r.json()["rules"] == 1, r.text
    folder = rule_folder(tmp_path / "server-rules", {"two.yml": RULES["two.yml"]})
    r = admin.post("/api/rules/import-folder", json={"path": str(folder)})
    assert r.status_code == 200 and r.json()["source"] == "server-rules"
    assert {"loose", "server-rules"} <= set(sets(rules_web))


def test_bad_uploads_are_refused_and_keep_the_set(rules_web: Web) -> None:
    admin = rules_web.clients["admin"]
    upload(admin, [("keep.zip", zipped({"one.yml": RULES["one.yml"]}))])
    big = "# padding\n" * 200_000  # 2 MB, over CASESCOPE_RULES_MAX_UNPACKED_MB=1
    refused = {
        "not a readable zip": [("keep.zip", b"not a zip at all")],
        "holds no .yml": [("keep.zip", zipped({"README.md": "hello"}))],
        "over 1 MB": [("keep.zip", zipped({"one.yml": RULES["one.yml"] + big}))],
        "not both": [("keep.zip", zipped(RULES)), ("two.yml", b"title: x")],
        "no .yml or .yaml file": [("notes.txt", b"hello")],
    }
    for why, files in refused.items():
        r = upload(admin, files)
        assert r.status_code == 400 and why in r.json()["detail"], (why, r.text)
    assert sets(rules_web)["keep"]["rules"] == 1
    bad_name = upload(admin, [("x.yml", RULES["one.yml"].encode())], name="a\x01b")
    assert bad_name.status_code == 400
    missing = admin.post("/api/rules/import-folder", json={"path": "/no/such/folder"})
    assert missing.status_code == 400 and "no folder or .zip" in missing.json()["detail"]
    nul = admin.post("/api/rules/import-folder", json={"path": "/tmp/a\x00b"})
    assert nul.status_code == 400
    assert admin.post("/api/rules/import", files=[]).status_code == 422


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 400),
        ({"sources": ["keep"]}, 400),  # a set alone selects nothing
        ({"levels": ["severe"]}, 422),
        ({"statuses": ["beta"]}, 422),
        ({"tags": [""]}, 422),
        ({"tags": "attack.t1059"}, 422),
    ],
)
def test_bad_selections_are_refused(rules_web: Web, body: dict, status: int) -> None:
    r = rules_web.clients["admin"].post("/api/rules/disable", json=body)
    assert r.status_code == status, r.text


@pytest.mark.parametrize(
    "query", ["level=severe", "status=beta", "offset=-1", "limit=0", "limit=100000", "failed=x"]
)
def test_bad_list_parameters_are_422(rules_web: Web, query: str) -> None:
    assert rules_web.clients["admin"].get(f"/api/rules?{query}").status_code == 422
    page = rules_web.clients["admin"].get(f"/admin/rules?{query}")
    assert page.status_code == 422 or query.startswith("limit")


def test_the_page_imports_toggles_and_shows_rule_text_inert(rules_web: Web) -> None:
    admin = rules_web.clients["admin"]
    data = {"csrf_token": admin.headers["X-CSRF-Token"], "name": "page-set"}
    request = admin.build_request(
        "POST", "/admin/rules/import", data=data, files=[("files", ("r.zip", zipped(RULES)))]
    )
    del request.headers["X-CSRF-Token"]
    r = admin.send(request)
    assert r.status_code == 200 and 'id="import-result"' in r.text, r.text[:500]
    assert "page-set: 3 rules loaded" in r.text and "1 cannot run" in r.text
    assert "<script>alert(1)</script>" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    changed = form(admin, "/admin/rules/disable", levels="low", source="page-set")
    assert changed.status_code == 200 and "1 rule disabled" in changed.text
    listed = admin.get("/admin/rules", params={"source": "page-set", "failed": "true"})
    assert 'class="error rule-error"' in listed.text and "bad.yml" in listed.text
    nothing = form(admin, "/admin/rules/enable", source="page-set")
    assert nothing.status_code == 400 and "select rules by" in nothing.text


def test_a_rule_set_is_deleted_by_name_and_the_others_stay(rules_web: Web) -> None:
    admin = rules_web.clients["admin"]
    only_here = RULE.format(
        title="only in the deleted set", n=4, status="test", level="low", tags="x", word="d"
    )
    loose = [("one.yml", RULES["one.yml"].encode()), ("four.yml", only_here.encode())]
    upload(admin, loose, name="to-delete")
    upload(admin, [("three.yml", RULES["three.yml"].encode())], name="stays")
    for role in ("analyst", "reader"):
        assert rules_web.clients[role].delete("/api/rules/sets/to-delete").status_code == 403
    r = admin.delete("/api/rules/sets/to-delete")
    assert r.status_code == 200 and r.json() == {"rules": 2, "hits": 0, "cases": 0}, r.text
    assert "to-delete" not in sets(rules_web) and "stays" in sets(rules_web)
    assert "only in the deleted set" not in active_titles(rules_web)  # compiled again
    assert "<script>alert(1)</script>" in active_titles(rules_web)
    gone = admin.delete("/api/rules/sets/to-delete")
    assert gone.status_code == 404 and "no rule set is named" in gone.json()["detail"]
    assert admin.delete(f"/api/rules/sets/{'x' * 201}").status_code == 422
    audit = admin.get("/api/audit", params={"action": "rules.delete"}).json()
    assert audit[0]["actor"] == "web:admin" and "to-delete: 2 rules removed" in audit[0]["detail"]


def test_the_page_deletes_a_set_only_when_its_name_is_typed(rules_web: Web) -> None:
    admin = rules_web.clients["admin"]
    name = "<b>bold</b> set"
    upload(admin, [("one.yml", RULES["one.yml"].encode())], name=name)
    page = admin.get("/admin/rules")
    assert 'id="delete-set-form"' in page.text and "<b>bold</b>" not in page.text
    wrong = form(admin, "/admin/rules/sets/delete", source=name, confirm="bold set")
    assert wrong.status_code == 400 and "does not match: nothing was deleted" in wrong.text
    assert name in sets(rules_web)
    done = form(admin, "/admin/rules/sets/delete", source=name, confirm=name)
    assert done.status_code == 200 and 'id="delete-result"' in done.text, done.text[:500]
    assert "&lt;b&gt;bold&lt;/b&gt; set deleted: 1 rule removed with 0 hits" in done.text
    assert name not in sets(rules_web)
    unknown = form(admin, "/admin/rules/sets/delete", source="nope", confirm="nope")
    assert unknown.status_code == 404 and "no rule set is named" in unknown.text
    analyst = rules_web.clients["analyst"]
    refused = form(analyst, "/admin/rules/sets/delete", source="stays", confirm="stays")
    assert refused.status_code == 403

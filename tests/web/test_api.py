"""The JSON API end to end on the real app: auth, CSRF, tokens, search, export, upload names."""

from __future__ import annotations

import asyncio
import csv
import io
import time

import orjson
import pytest
from sqlalchemy import select, update

from casescope.config import Settings
from casescope.errors import CasescopeError, IndexMemoryError
from casescope.model.tables import EvidenceFile
from casescope.model.users import ApiToken
from casescope.web.app import _index_memory, create_app
from tests.web.conftest import PASSWORD, Web, login


def test_login_me_logout(web: Web) -> None:
    client = login(web.app, "analyst")
    assert client.get("/api/me").json()["role"] == "analyst"
    assert client.post("/api/logout").status_code == 200
    assert client.get("/api/me").status_code == 401


def test_session_cookie_flags(web: Web) -> None:
    r = web.anonymous.post("/api/login", json={"username": "reader", "password": PASSWORD})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie
    web.anonymous.cookies.clear()


def test_wrong_password_is_401(web: Web) -> None:
    r = web.anonymous.post("/api/login", json={"username": "admin", "password": "nope" * 4})
    assert r.status_code == 401


def test_csrf_is_required_with_a_cookie(web: Web) -> None:
    client = login(web.app, "analyst")
    del client.headers["X-CSRF-Token"]
    assert client.post("/api/cases", json={"name": "no csrf"}).status_code == 403
    client.headers["X-CSRF-Token"] = "forged"
    assert client.post("/api/cases", json={"name": "no csrf"}).status_code == 403


def test_login_rate_limit(web: Web) -> None:
    client = login(web.app, "outsider")  # a fresh client, same address as the others
    for _ in range(web.settings.login_attempts_per_minute):
        bad = client.post("/api/login", json={"username": "ratelimited", "password": "x" * 12})
        assert bad.status_code == 401
    blocked = client.post("/api/login", json={"username": "ratelimited", "password": "x" * 12})
    assert blocked.status_code == 429


def test_api_token_bearer_expiry_and_revocation(web: Web) -> None:
    analyst = web.clients["analyst"]
    created = analyst.post("/api/tokens", json={"name": "ci", "days": 1}).json()
    bearer = {"Authorization": f"Bearer {created['token']}"}
    assert web.anonymous.get("/api/cases", headers=bearer).status_code == 200
    # bearer requests need no CSRF token
    made = web.anonymous.post("/api/cases", json={"name": "via token"}, headers=bearer)
    assert made.status_code == 201
    with web.app.state.web.db.read() as session:
        stored = session.scalar(select(ApiToken.token_hash).where(ApiToken.id == created["id"]))
    assert stored and created["token"] not in stored
    with web.app.state.web.db.session() as session:
        session.execute(
            update(ApiToken).where(ApiToken.id == created["id"]).values(expires_at=time.time() - 1)
        )
    assert web.anonymous.get("/api/cases", headers=bearer).status_code == 401
    second = analyst.post("/api/tokens", json={"name": "ci2"}).json()
    bearer2 = {"Authorization": f"Bearer {second['token']}"}
    assert web.anonymous.get("/api/cases", headers=bearer2).status_code == 200
    assert analyst.delete(f"/api/tokens/{second['id']}").status_code == 200
    assert web.anonymous.get("/api/cases", headers=bearer2).status_code == 401


def test_upload_name_never_becomes_a_path(web: Web) -> None:
    files = web.clients["admin"].get(f"/api/cases/{web.case_id}/files").json()
    names = [f["name"] for f in files]
    assert "upload:evil.evtx" in names
    assert all(n.startswith("upload:") and ".." not in n for n in names)
    home = web.settings.home_dir
    assert not (home.parent / "evil.evtx").exists()
    assert not (home.parent.parent / "evil.evtx").exists()
    with web.app.state.web.db.read() as session:
        stored = session.scalars(select(EvidenceFile.stored_path)).all()
    assert all(str(web.settings.evidence_dir) in p for p in stored)


def test_truncated_upload_fails_with_reason_and_can_be_retried(web: Web) -> None:
    client = web.clients["analyst"]
    files = client.get(f"/api/cases/{web.case_id}/files").json()
    evil = next(f for f in files if f["name"] == "upload:evil.evtx")
    assert evil["status"] in ("completed", "failed")
    if evil["status"] == "failed":
        assert evil["error"]
        assert client.post(f"/api/cases/{web.case_id}/files/retry", json={}).json()["queued"] >= 1


def _all_pages(client, case_id: int, order: str) -> list[tuple]:  # type: ignore[no-untyped-def]
    keys, cursor = [], None
    while True:
        params = {"limit": 7, "order": order, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/api/cases/{case_id}/events", params=params).json()
        keys += [(r["ts"], r["file_id"], r["seq"]) for r in page["rows"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return keys


def test_keyset_pages_cover_the_result_set_in_order(web: Web) -> None:
    client = web.clients["reader"]
    total = client.get(f"/api/cases/{web.case_id}/events?limit=1").json()["total"]
    assert total > 7
    forward = _all_pages(client, web.case_id, "asc")
    assert len(forward) == total == len(set(forward))
    assert forward == sorted(forward)
    assert _all_pages(client, web.case_id, "desc") == forward[::-1]


def test_bad_query_and_cursor_are_400(web: Web) -> None:
    client = web.clients["reader"]
    assert (
        client.get(f"/api/cases/{web.case_id}/events", params={"q": "a AND ("}).status_code == 400
    )
    bad = client.get(f"/api/cases/{web.case_id}/events", params={"cursor": "!!"})
    assert bad.status_code == 400


def test_an_unknown_level_is_4xx_with_the_levels(web: Web) -> None:
    client = web.clients["reader"]
    events = client.get(f"/api/cases/{web.case_id}/events", params={"level": "foo"})
    assert events.status_code == 400 and "level must be one of" in events.json()["detail"]
    grouped = client.get(f"/api/cases/{web.case_id}/detections", params={"level": "foo"})
    assert grouped.status_code == 400 and "informational" in grouped.text
    assert client.get(f"/api/cases/{web.case_id}/detections?level=high").status_code == 200


def test_filters_channel_and_file(web: Web) -> None:
    client = web.clients["reader"]
    first = client.get(f"/api/cases/{web.case_id}/events?limit=1").json()["rows"][0]
    params = {"channel": first["channel"], "file_id": first["file_id"], "limit": 500}
    rows = client.get(f"/api/cases/{web.case_id}/events", params=params).json()["rows"]
    assert rows and all(
        r["channel"] == first["channel"] and r["file_id"] == first["file_id"] for r in rows
    )


def test_pages_leave_out_the_original_record_unless_asked(web: Web) -> None:
    client = web.clients["reader"]
    base = f"/api/cases/{web.case_id}/events"
    plain = client.get(base, params={"limit": 3}).json()["rows"]
    full = client.get(base, params={"limit": 3, "raw": "true"}).json()["rows"]
    assert plain and all("raw" not in r and isinstance(r["fields"], dict) for r in plain)
    assert [(r["file_id"], r["seq"]) for r in full] == [(r["file_id"], r["seq"]) for r in plain]
    detail = client.get(f"{base}/{plain[0]['file_id']}/{plain[0]['seq']}").json()
    assert full[0]["raw"] == detail["raw"] and full[0]["raw"]


def test_event_detail_tag_and_hide(web: Web) -> None:
    analyst = web.clients["analyst"]
    base = f"/api/cases/{web.case_id}/events"
    first = analyst.get(f"{base}?limit=1").json()
    row = first["rows"][0]
    path = f"{base}/{row['file_id']}/{row['seq']}"
    detail = analyst.get(path).json()
    assert detail["raw"] and isinstance(detail["fields"], dict)
    assert (
        analyst.post(f"{path}/marks", json={"kind": "tag", "label": "lateral"}).status_code == 200
    )
    assert analyst.post(f"{path}/marks", json={"kind": "star"}).status_code == 200
    kinds = {m["kind"] for m in analyst.get(path).json()["marks"]}
    assert kinds == {"tag", "star"}
    starred = analyst.get(f"{base}?starred=true").json()
    assert [(r["file_id"], r["seq"]) for r in starred["rows"]] == [(row["file_id"], row["seq"])]
    analyst.post(f"{path}/marks", json={"kind": "hidden"})
    assert analyst.get(f"{base}?limit=1").json()["total"] == first["total"] - 1
    assert analyst.get(f"{base}?limit=1&show_hidden=true").json()["total"] == first["total"]
    analyst.request("DELETE", f"{path}/marks", json={"kind": "hidden"})
    assert analyst.get(f"{base}?limit=1").json()["total"] == first["total"]


def test_export_csv_and_jsonl_stream_every_match(web: Web) -> None:
    client = web.clients["reader"]
    total = client.get(f"/api/cases/{web.case_id}/events?limit=1").json()["total"]
    r = client.get(f"/api/cases/{web.case_id}/export?format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0][:3] == ["ts", "file_id", "seq"] and len(rows) - 1 == total
    # a formula-like attacker value is neutralised in CSV
    assert not any(cell.startswith("=") for row in rows[1:] for cell in row)
    lines = client.get(f"/api/cases/{web.case_id}/export?format=jsonl").content.splitlines()
    assert len(lines) == total and "fields" in orjson.loads(lines[0])
    audit = web.clients["admin"].get("/api/audit?limit=50").json()
    assert any(a["action"] == "event.export" and a["actor"] == "web:reader" for a in audit)


def test_audit_log_filters_by_action_old_names_included(web: Web) -> None:
    admin = web.clients["admin"]
    url = f"/api/audit?case_id={web.case_id}&limit=5000"
    steps = admin.get(url, params={"action": "step.indexing"}).json()
    assert steps and {a["action"] for a in steps} == {"step.indexing"}
    assert all(a["file_id"] is not None for a in steps)  # one row per file
    assert admin.get(url, params={"action": "indexing"}).json() == steps  # the old name
    uploads = admin.get(url, params={"action": "intake.upload"}).json()
    assert [a["actor"] for a in uploads] == ["web:analyst"]
    assert admin.get(url, params={"action": "upload"}).json() == uploads
    everything = admin.get(url).json()
    assert {a["action"] for a in everything} >= {"case.create", "intake.registered", "step.sigma"}


def test_dashboard_detections_health_metrics(web: Web) -> None:
    client = web.clients["reader"]
    board = client.get(f"/api/cases/{web.case_id}").json()
    assert board["events_indexed"] > 0
    assert isinstance(client.get(f"/api/cases/{web.case_id}/detections").json()["rules"], list)
    health = web.clients["admin"].get("/health").json()
    assert health["ok"] and health["db"] == "ok" and health["store"] == "ok"
    metrics = web.clients["admin"].get("/metrics").text
    assert 'casescope_files{status="completed"}' in metrics
    assert "casescope_segment_cache_hit_ratio" in metrics
    assert "casescope_events_indexed " in metrics  # the index answered (store: ok)
    assert "/api/cases/{case_id}/events" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("key", [None, "", "changeme", "secret-key-placeholder-0123456789abcdef"])
def test_refuses_to_start_without_a_real_secret_key(key: str | None) -> None:
    with pytest.raises(CasescopeError, match="CASESCOPE_SECRET_KEY"):
        create_app(Settings(secret_key=key))


def test_a_query_over_the_index_budget_is_503_with_retry_after() -> None:
    """chDB's MEMORY_LIMIT_EXCEEDED becomes IndexMemoryError in the index (tested in
    tests/integration/store); the app answers it as a busy server, not a bad request."""
    busy = IndexMemoryError("over the budget")
    response = asyncio.run(_index_memory(None, busy))  # type: ignore[arg-type]
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert orjson.loads(response.body) == {"detail": "over the budget"}

"""API tokens: always expiring (at most CASESCOPE_TOKEN_MAX_DAYS), created only from a logged-in
session, scoped (`read` tokens change nothing), and their last use recorded at most once a
minute."""

from __future__ import annotations

import time

from sqlalchemy import select, update

from casescope.model.users import ApiToken
from tests.web.conftest import Web


def _token(web: Web, role: str = "analyst", **body: object) -> dict:
    r = web.clients[role].post("/api/tokens", json={"name": "t", **body})
    assert r.status_code == 200, r.text
    return r.json()


def _auth(created: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {created['token']}"}


def _last_used(web: Web, token_id: int) -> float | None:
    with web.app.state.web.db.read() as session:
        return session.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token_id))


def test_a_token_cannot_mint_tokens(bare: Web) -> None:
    """The attack: a leaked token mints a second one, which outlives the first's revocation."""
    leaked = _auth(_token(bare, days=1))
    minted = bare.anonymous.post("/api/tokens", json={"name": "spare", "days": 1}, headers=leaked)
    assert minted.status_code == 403
    assert "session" in minted.json()["detail"]


def test_no_permanent_token_and_a_maximum_lifetime(bare: Web) -> None:
    client = bare.clients["analyst"]
    assert client.post("/api/tokens", json={"name": "forever", "days": None}).status_code == 422
    too_long = client.post("/api/tokens", json={"name": "long", "days": 91})
    assert too_long.status_code == 400 and "90 days" in too_long.json()["detail"]
    default = _token(bare)  # no days given: the default lifetime, which expires
    assert default["expires_at"] is not None
    assert default["expires_at"] - time.time() <= 90 * 86400
    maximum = _token(bare, days=90)
    assert maximum["expires_at"] - time.time() > 89 * 86400


def test_a_read_token_is_refused_on_every_change(bare: Web) -> None:
    reader_token = _auth(_token(bare, scope="read", days=1))
    case = f"/api/cases/{bare.case_id}"
    assert bare.anonymous.get(f"{case}/files", headers=reader_token).status_code == 200
    assert bare.anonymous.get("/api/me", headers=reader_token).json()["token_scope"] == "read"
    for method, path, body in (
        ("POST", "/api/cases", {"name": "read token case"}),
        ("POST", f"{case}/files/retry", {}),
        ("POST", f"{case}/iocs", {"values": ["10.9.9.9"]}),
        ("POST", f"{case}/events/1/1/marks", {"kind": "star"}),
        ("DELETE", f"{case}/events/1/1/marks", {"kind": "star"}),
        ("POST", f"{case}/marks/bulk", {"action": "add", "kind": "star", "events": []}),
        ("POST", f"{case}/events/1/1/notes", {"text": "a note"}),
        ("PUT", f"{case}/notes/1", {"text": "a note"}),
        ("DELETE", f"{case}/notes/1", None),
        ("POST", f"{case}/saved-searches", {"name": "n", "params": {}}),
        ("DELETE", "/api/tokens/1", None),
        ("POST", "/api/logout", None),
    ):
        r = bare.anonymous.request(method, path, json=body, headers=reader_token)
        assert r.status_code == 403, (path, r.status_code, r.text)
        assert "read-only token" in r.json()["detail"]
    write = _auth(_token(bare, scope="write", days=1))
    assert bare.anonymous.post("/api/cases", json={"name": "by a write token"}, headers=write)
    assert bare.clients["analyst"].post("/api/tokens", json={"scope": "admin"}).status_code == 422


def test_last_use_is_recorded_at_most_once_a_minute(bare: Web) -> None:
    created = _token(bare, days=1)
    assert _last_used(bare, created["id"]) is None
    bare.anonymous.get("/api/me", headers=_auth(created))
    first = _last_used(bare, created["id"])
    assert first is not None and abs(first - time.time()) < 3600
    bare.anonymous.get("/api/me", headers=_auth(created))
    assert _last_used(bare, created["id"]) == first  # within the minute: no write
    with bare.app.state.web.db.session() as session:
        session.execute(
            update(ApiToken).where(ApiToken.id == created["id"]).values(last_used_at=first - 61)
        )
    bare.anonymous.get("/api/me", headers=_auth(created))
    assert _last_used(bare, created["id"]) > first - 61
    listed = {t["id"]: t for t in bare.clients["analyst"].get("/api/tokens").json()}
    assert listed[created["id"]]["last_used_at"] == _last_used(bare, created["id"])


def test_listing_shows_no_secret_and_admins_see_everyones(bare: Web) -> None:
    mine = _token(bare, "reader", days=1, scope="read")
    own = bare.clients["reader"].get("/api/tokens").json()
    row = next(t for t in own if t["id"] == mine["id"])
    assert row["scope"] == "read" and row["username"] == "reader"
    assert "token_hash" not in row and mine["token"] not in str(own)
    everyone = bare.clients["admin"].get("/api/tokens", params={"all": "true"}).json()
    assert {t["username"] for t in everyone} >= {"reader", "analyst"}
    assert bare.clients["reader"].get("/api/tokens", params={"all": "true"}).status_code == 403

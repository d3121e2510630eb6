"""The first admin's setup (one-time token) with bad input: a 4xx, never a 500.

Its own module: an app with no users yet, and chDB allows one index per process at a time.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from casescope.config import Settings
from casescope.web.app import create_app
from tests.web.conftest import PASSWORD

NON_ASCII = "tökén-\u00e9\u4e2d"


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    """An app with no users yet: its one-time setup token."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CASESCOPE_HOME", str(tmp_path / "home"))
        mp.setenv("CASESCOPE_SECRET_KEY", secrets.token_urlsafe(48))
        app = create_app(Settings())
        with TestClient(app, base_url="https://testserver") as client:
            yield client, app.state.web.setup_token


def test_setup_refuses_oversized_and_non_ascii_fields(fresh: tuple[TestClient, str]) -> None:
    client, token = fresh
    body = {"username": "first", "password": PASSWORD}
    r = client.post("/api/setup", json={**body, "setup_token": NON_ASCII})
    assert r.status_code == 403
    r = client.post("/api/setup", json={**body, "setup_token": "x" * 100_000})
    assert r.status_code == 422
    r = client.post("/api/setup", json={**body, "username": "u" * 5000, "setup_token": token})
    assert r.status_code == 422
    csrf = client.get("/setup").cookies.get("casescope_login_csrf") or ""
    for field, value in (("username", "u" * 5000), ("password", "p" * 5000)):
        form = {**body, "setup_token": token, "login_csrf": csrf, field: value}
        r = client.post("/setup", data=form)
        assert r.status_code in (400, 422), (field, r.status_code)
    form = {**body, "setup_token": "t" * 5000, "login_csrf": csrf}
    assert client.post("/setup", data=form).status_code in (400, 422)
    form = {**body, "setup_token": NON_ASCII, "login_csrf": csrf}
    assert client.post("/setup", data=form).status_code == 403
    ok = client.post("/api/setup", json={**body, "setup_token": token})
    assert ok.status_code == 200, ok.text

"""One real app per test module: real SQLite, real chDB, real workers, real attack samples.

The app's lifespan runs once (it owns the index); other users' clients share the same app
object without re-running it, each with its own cookie jar.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from casescope.config import Settings
from casescope.model.users import Role
from casescope.services.users import create_user
from casescope.web.app import create_app

PASSWORD = "correct horse battery"
SAMPLES = (
    "Lateral Movement/LM_Remote_Service02_7045.evtx",
    "Credential Access/kerberos_pwd_spray_4771.evtx",
    "Privilege Escalation/Sysmon_UACME_22.evtx",
)
XSS = "<img src=x onerror=alert(1)>"
JS_URL = "javascript:alert(1)"
BIDI = "invoice\u202etxt.exe"
NUL = "nul\x00byte"
ROLES = ("admin", "analyst", "reader", "outsider")


@dataclass
class Web:
    app: FastAPI
    settings: Settings
    clients: dict[str, TestClient]
    anonymous: TestClient
    case_id: int


def login(app: FastAPI, username: str) -> TestClient:
    client = TestClient(app, base_url="https://testserver")
    r = client.post("/api/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


def xss_ndjson(path: Path) -> Path:
    record = {
        "EventTime": "2024-05-01T10:00:00Z",
        "Hostname": XSS,
        "Message": XSS,
        "Url": JS_URL,
        "FileName": BIDI,
        "Note": NUL,
    }
    lines = [json.dumps(record), json.dumps({**record, "Message": "second"})]
    path.write_text("\n".join(lines) + "\n")
    return path


def wait_searchable(client: TestClient, case_id: int, first: int, last: int) -> dict:
    deadline = time.monotonic() + 300
    progress: dict = {}
    while time.monotonic() < deadline:
        url = f"/api/cases/{case_id}/progress?first_id={first}&last_id={last}"
        progress = client.get(url).json()
        if progress["searchable"]:
            return progress
        time.sleep(0.5)
    raise AssertionError(f"files {first}-{last} did not finish: {progress}")


def _uploads(attack_samples: Path, home: Path) -> list:
    files = [("files", (Path(s).name, (attack_samples / s).read_bytes())) for s in SAMPLES]
    files.append(("files", ("xss.ndjson", xss_ndjson(home / "xss.ndjson").read_bytes())))
    evil = (attack_samples / SAMPLES[1]).read_bytes()
    files.append(("files", ("../../evil.evtx", evil[: len(evil) // 2])))  # a truncated copy
    return files


@pytest.fixture(scope="module")
def web(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, attack_samples: Path
) -> Iterator[Web]:
    """The app; a test module may set more settings in a module-level dict `WEB_ENV`."""
    home = tmp_path_factory.mktemp("webhome")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CASESCOPE_HOME", str(home))
        mp.setenv("CASESCOPE_SECRET_KEY", secrets.token_urlsafe(48))
        mp.setenv("CASESCOPE_WORKERS", "2")
        mp.setenv("CASESCOPE_HEARTBEAT_SECONDS", "0.5")
        mp.setenv("CASESCOPE_LEASE_SECONDS", "5")
        mp.setenv("CASESCOPE_ALLOWED_HOSTS", "testserver")
        for name, value in getattr(request.module, "WEB_ENV", {}).items():
            mp.setenv(name, value)
        settings = Settings()
        app = create_app(settings)
        with TestClient(app, base_url="https://testserver") as anonymous:
            db = app.state.web.db
            for name, role in zip(
                ROLES, (Role.ADMIN, Role.ANALYST, Role.READ_ONLY, Role.ANALYST), strict=True
            ):
                create_user(db, name, PASSWORD, role)
            clients = {name: login(app, name) for name in ROLES}
            analyst = clients["analyst"]
            case_id = analyst.post("/api/cases", json={"name": "web case"}).json()["id"]
            clients["admin"].post(f"/api/users/reader/cases/{case_id}")
            r = analyst.post(
                f"/api/cases/{case_id}/files/upload", files=_uploads(attack_samples, home)
            )
            assert r.status_code == 200, r.text
            body = r.json()
            wait_searchable(analyst, case_id, body["first_id"], body["last_id"])
            yield Web(app, settings, clients, anonymous, case_id)


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    """A real app with the four users and one empty case: no evidence, no workers started
    (for account, token and bad-input tests, which need no events)."""
    home = tmp_path_factory.mktemp("barehome")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CASESCOPE_HOME", str(home))
        mp.setenv("CASESCOPE_SECRET_KEY", secrets.token_urlsafe(48))
        mp.setenv("CASESCOPE_WORKERS", "1")
        settings = Settings()
        app = create_app(settings)
        with TestClient(app, base_url="https://testserver") as anonymous:
            db = app.state.web.db
            for name, role in zip(
                ROLES, (Role.ADMIN, Role.ANALYST, Role.READ_ONLY, Role.ANALYST), strict=True
            ):
                create_user(db, name, PASSWORD, role)
            clients = {name: login(app, name) for name in ROLES}
            case_id = clients["analyst"].post("/api/cases", json={"name": "bare case"}).json()["id"]
            clients["admin"].post(f"/api/users/reader/cases/{case_id}")
            yield Web(app, settings, clients, anonymous, case_id)

"""One real app per test module: real SQLite, real chDB, real workers, real attack samples.

The app's lifespan runs once (it owns the index); other users' clients share the same app
object without re-running it, each with its own cookie jar. `app_settings` and `running_app`
build such an app; a module passes what its app differs in (files, a case name, settings, a
`prepare` step for rules or IOCs before the upload).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from casescope.config import Settings
from casescope.model.db import Database
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
#: Other characters that reorder or break the text after them (a right-to-left mark, a line
#: separator, an isolate), in one event field.
REORDERING_TEXT = "left\u200fright\u2028next\u2067end"
NUL = "nul\x00byte"
#: Every app's users; the analyst owns the case, the reader is granted it, the outsider not.
USERS = {
    "admin": Role.ADMIN,
    "analyst": Role.ANALYST,
    "reader": Role.READ_ONLY,
    "outsider": Role.ANALYST,
}
ROLES = tuple(USERS)
#: A file to upload: its name and bytes.
Upload = tuple[str, bytes]


@dataclass
class Web:
    app: FastAPI
    settings: Settings
    clients: dict[str, TestClient]
    anonymous: TestClient
    case_id: int

    @property
    def db(self) -> Database:
        return self.app.state.web.db


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
        "Label": REORDERING_TEXT,
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


def uploads(*paths: Path) -> list[Upload]:
    return [(path.name, path.read_bytes()) for path in paths]


def sample_uploads(attack_samples: Path, samples: Sequence[str] = SAMPLES) -> list[Upload]:
    return uploads(*(attack_samples / s for s in samples))


def rule_folder(folder: Path, rules: Mapping[str, str]) -> Path:
    """`folder` with a Sigma rule file per `rules` item (file name: YAML, dedented)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in rules.items():
        (folder / name).write_text(dedent(text))
    return folder


@contextmanager
def app_settings(home: Path, env: Mapping[str, str] | None = None) -> Iterator[Settings]:
    """Settings of an app at `home` with quick heartbeats and short leases, plus `env`. They
    are set in the environment while the block runs, as the app's worker pool reads them
    there."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CASESCOPE_HOME", str(home))
        mp.setenv("CASESCOPE_SECRET_KEY", secrets.token_urlsafe(48))
        mp.setenv("CASESCOPE_WORKERS", "2")
        mp.setenv("CASESCOPE_HEARTBEAT_SECONDS", "0.5")
        mp.setenv("CASESCOPE_LEASE_SECONDS", "5")
        mp.setenv("CASESCOPE_ALLOWED_HOSTS", "testserver")
        for name, value in (env or {}).items():
            mp.setenv(name, value)
        yield Settings()


@contextmanager
def running_app(
    settings: Settings,
    files: Sequence[Upload] = (),
    *,
    case_name: str = "web case",
    prepare: Callable[[Web], None] | None = None,
) -> Iterator[Web]:
    """The app, its lifespan running, with `USERS` logged in and the analyst's case, into
    which `files` are uploaded (after `prepare`, e.g. rules and IOCs) and made searchable."""
    app = create_app(settings)
    with TestClient(app, base_url="https://testserver") as anonymous:
        for name, role in USERS.items():
            create_user(app.state.web.db, name, PASSWORD, role)
        clients = {name: login(app, name) for name in USERS}
        analyst = clients["analyst"]
        case_id = analyst.post("/api/cases", json={"name": case_name}).json()["id"]
        clients["admin"].post(f"/api/users/reader/cases/{case_id}")
        web = Web(app, settings, clients, anonymous, case_id)
        if prepare is not None:
            prepare(web)
        if files:
            upload = [("files", file) for file in files]
            r = analyst.post(f"/api/cases/{case_id}/files/upload", files=upload)
            assert r.status_code == 200, r.text
            wait_searchable(analyst, case_id, r.json()["first_id"], r.json()["last_id"])
        yield web


@contextmanager
def open_web(
    home: Path,
    files: Sequence[Upload] = (),
    *,
    case_name: str = "web case",
    env: Mapping[str, str] | None = None,
    prepare: Callable[[Web], None] | None = None,
) -> Iterator[Web]:
    """`running_app` on `app_settings(home, env)`: a test module's app in one call."""
    with (
        app_settings(home, env) as settings,
        running_app(settings, files, case_name=case_name, prepare=prepare) as web,
    ):
        yield web


@pytest.fixture(scope="module")
def web(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, attack_samples: Path
) -> Iterator[Web]:
    """The app with the samples, a hostile NDJSON file and a truncated EVTX under a
    path-like name; a test module may set more settings in a module-level dict `WEB_ENV`."""
    home = tmp_path_factory.mktemp("webhome")
    evil = (attack_samples / SAMPLES[1]).read_bytes()
    files = [
        *sample_uploads(attack_samples),
        ("xss.ndjson", xss_ndjson(home / "xss.ndjson").read_bytes()),
        ("../../evil.evtx", evil[: len(evil) // 2]),  # a truncated copy
    ]
    with open_web(home, files, env=getattr(request.module, "WEB_ENV", {})) as app:
        yield app


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    """A real app with the four users and one empty case: no evidence, one worker
    (for account, token and bad-input tests, which need no events)."""
    home = tmp_path_factory.mktemp("barehome")
    with open_web(home, case_name="bare case", env={"CASESCOPE_WORKERS": "1"}) as app:
        yield app

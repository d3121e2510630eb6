"""Fuzz every operation of the OpenAPI document with schemathesis: no input may give a 500.

Schemathesis reads the real app's OpenAPI document (ASGI, in process, offline), generates
valid and invalid values for every parameter and body of every route, and sends them as a
logged-in admin with the CSRF header, so they reach the handlers. Each route gets a few
derandomized examples (the same ones on every run), so the whole module stays within a
few minutes on two cores. Every 500 it found has its own regular test in test_bad_input.py.

Guards that keep the fuzzing inside its sandbox: a server-folder import only ever names a
folder under an empty temporary directory; the fuzzing admin's own account is never a
target of the user routes (another user is), and the session is renewed when a fuzzed
logout or password reset ends it (the refused example is sent again).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.python import asgi

from casescope.config import Settings
from casescope.model.users import Role
from casescope.services.users import create_user
from casescope.web.app import create_app

PASSWORD = "correct horse battery"
ADMIN = "fuzz-admin"
#: Examples per route (valid and invalid ones together); enough to reach each handler with
#: odd values, few enough for a bounded run.
EXAMPLES = 20
BASE_URL = "https://testserver"


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation, read without starting the app."""
    app = create_app(Settings(secret_key=secrets.token_urlsafe(48)))
    return [(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops]


@dataclass
class Fuzz:
    app: FastAPI
    schema: schemathesis.schemas.BaseSchema
    client: asgi.ASGIClient
    case_id: int
    sandbox: Path
    csrf: str = ""

    def log_in(self) -> None:
        self.client.cookies.clear()
        r = self.client.post(
            f"{BASE_URL}/api/login", json={"username": ADMIN, "password": PASSWORD}
        )
        assert r.status_code == 200, r.text
        self.csrf = r.json()["csrf_token"]

    def renew_session(self) -> bool:
        """Log in again if the session has ended (a fuzzed logout, or a password reset of
        the session's own user); whether it had."""
        if self.client.get(f"{BASE_URL}/api/me").status_code == 200:
            return False
        self.log_in()
        return True


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    home = tmp_path_factory.mktemp("fuzzhome")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CASESCOPE_HOME", str(home / "home"))
        mp.setenv("CASESCOPE_SECRET_KEY", secrets.token_urlsafe(48))
        mp.setenv("CASESCOPE_WORKERS", "1")
        mp.setenv("CASESCOPE_HEARTBEAT_SECONDS", "0.5")
        mp.setenv("CASESCOPE_SSE_HEARTBEAT_SECONDS", "0.5")
        # fuzzed logins fail by the hundred from one address: keep the fuzzer's own login open
        mp.setenv("CASESCOPE_LOGIN_ATTEMPTS_PER_MINUTE", "1000000")
        app = create_app(Settings())
        # The app runs under starlette's TestClient (its lifespan owns the index for the
        # module); schemathesis only sends requests, in process: the schemathesis pytest
        # plugin ends lifespans *it* started after every test.
        with TestClient(app, base_url=BASE_URL):
            schema = schemathesis.openapi.from_dict(app.openapi())
            db = app.state.web.db
            create_user(db, ADMIN, PASSWORD, Role.ADMIN)
            create_user(db, "victim", PASSWORD, Role.ANALYST)
            fuzz = Fuzz(app, schema, asgi.get_client(app), 0, home / "sandbox")
            fuzz.sandbox.mkdir()
            fuzz.log_in()
            r = fuzz.client.post(
                f"{BASE_URL}/api/cases",
                json={"name": "fuzz case"},
                headers={"X-CSRF-Token": fuzz.csrf},
            )
            fuzz.case_id = r.json()["id"]
            yield fuzz


def _confine(fuzz: Fuzz, case: schemathesis.Case) -> None:
    """Point the generated case at the fuzz case often, and away from what must not move."""
    params = case.path_parameters or {}
    if "case_id" in params and isinstance(params["case_id"], int) and params["case_id"] % 2:
        params["case_id"] = fuzz.case_id
    name = params.get("username")
    if name == ADMIN or (isinstance(name, str) and len(name) % 2):
        params["username"] = "victim"
    if case.path.endswith("/files/import") and isinstance(case.body, dict):
        folder = str(case.body.get("path", "")).replace("..", "_").lstrip("/")
        case.body["path"] = str(fuzz.sandbox / folder)


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path"), _operations())
def test_no_input_gives_a_500(fuzz: Fuzz, method: str, path: str) -> None:
    operation = fuzz.schema[path][method]
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def send(case: schemathesis.Case) -> None:
        _confine(fuzz, case)

        def call() -> Any:
            return case.call(
                app=fuzz.app,
                session=fuzz.client,
                base_url=BASE_URL,
                headers={"X-CSRF-Token": fuzz.csrf},
                timeout=10,  # an event stream is cut there; no other route takes that long
            )

        response = call()
        # A session ended by an earlier example refuses this one before its handler: renew
        # it and send the example again (checking the session only then, not before every
        # example, halves the requests).
        if response.status_code in (401, 403) and fuzz.renew_session():
            response = call()
        assert response.status_code < 500, (
            f"{method} {case.formatted_path} -> {response.status_code}\n"
            f"{case.as_curl_command()}\n{response.text[:1000]}"
        )

    send()

"""A stateless web tier: three real `casescope serve` processes on one PostgreSQL database
and one home, as behind a load balancer. A session opened on one is honoured by the others
(cookie and CSRF token come from the database), a change made through a second one is seen
on a third, a job's progress streams (SSE) from a process that did not start it, a logout on
one ends the session everywhere, and failed logins count across processes.

Each process has its own `chdb://` index path: chDB runs one process per data directory,
and nothing here reads events from the index (the job's progress, marks and sessions live
in the metadata DB). Several processes sharing one index is the ClickHouse-server transport's
part (tests/integration/team).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx2
import pytest

from tests.browser.support import (
    ADMIN,
    PASSWORD,
    _wait_up,
    create_admin,
    free_port,
    serve,
    serve_env,
)
from tests.e2e.test_ingest_cli import evtx_count

SAMPLE = "Execution/Sysmon_Exec_CompiledHTML.evtx"
#: Failed logins a user name may have before back-off (CASESCOPE_LOGIN_ATTEMPTS_PER_MINUTE).
FREE_FAILURES = 2
TERMINAL = {"completed", "failed", "cancelled"}


@pytest.fixture
def three_serves(tmp_path: Path, postgres_cluster) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """Base URLs of three serve processes sharing the home, the secret key and the DB."""
    home = tmp_path / "home"
    env = serve_env(home) | {
        "CASESCOPE_DATABASE_URL": postgres_cluster.database(),
        "CASESCOPE_LOGIN_ATTEMPTS_PER_MINUTE": str(FREE_FAILURES),
    }
    create_admin(env | {"CASESCOPE_INDEX_URL": f"chdb://{tmp_path / 'index-cli'}"})
    with ExitStack() as stack:
        bases = [
            stack.enter_context(serve(env | {"CASESCOPE_INDEX_URL": f"chdb://{tmp_path / n}"}))
            for n in ("index-a", "index-b", "index-c")
        ]
        yield bases


def _session(base: str, cookie: str, csrf: str | None) -> httpx2.Client:
    """A client of `base` that sends the session cookie by hand (it is `Secure`: httpx keeps
    it off plain http) and, if given, the CSRF token."""
    headers = {"Cookie": f"casescope_session={cookie}"}
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    return httpx2.Client(base_url=base, headers=headers, timeout=120)


def _progress_stream(client: httpx2.Client, case_id: int, operation_id: int) -> list[dict]:
    """Every `progress` message of the operation's event stream, until the server ends it."""
    messages = []
    url = f"/api/cases/{case_id}/operations/{operation_id}/events"
    with client.stream("GET", url, timeout=httpx2.Timeout(120, read=300)) as stream:
        assert stream.status_code == 200
        for line in stream.iter_lines():
            if line.startswith("data: "):
                messages.append(json.loads(line.removeprefix("data: ")))
    return messages


def test_a_session_works_on_every_serve_process(
    three_serves: list[str], tmp_path: Path, attack_samples: Path
) -> None:
    a, b, c = three_serves
    login = httpx2.post(f"{a}/api/login", json={"username": ADMIN, "password": PASSWORD})
    assert login.status_code == 200
    cookie, csrf = login.cookies["casescope_session"], login.json()["csrf_token"]
    sample = tmp_path / Path(SAMPLE).name
    shutil.copy(attack_samples / SAMPLE, sample)
    with _session(b, cookie, None) as no_csrf:
        assert no_csrf.post("/api/cases", json={"name": "x"}).status_code == 403
    with _session(b, cookie, csrf) as on_b, _session(c, cookie, csrf) as on_c:
        assert on_b.get("/api/me").json()["username"] == ADMIN
        case_id = on_b.post("/api/cases", json={"name": "team web"}).json()["id"]
        files = [("files", (sample.name, sample.read_bytes()))]
        upload = on_b.post(f"/api/cases/{case_id}/files/upload", files=files)
        assert upload.status_code == 200, upload.text
        file_id = upload.json()["queued"][0]
        operation_id = on_c.get(f"/api/cases/{case_id}/operations").json()[0]["id"]
        messages = _progress_stream(on_c, case_id, operation_id)
        assert messages[-1]["state"] in TERMINAL
        assert messages[-1]["files_done"] == 1 and messages[-1]["files_failed"] == 0
        assert messages[-1]["events"] == evtx_count(sample)
        ids = [m["event_id"] for m in messages]
        assert ids == sorted(set(ids))
        mark = {"kind": "tag", "label": "seen on b"}
        assert on_b.post(f"/api/cases/{case_id}/events/{file_id}/1/marks", json=mark).is_success
        tags = on_c.get(f"/api/cases/{case_id}/tags").json()
        assert [t["label"] for t in tags] == ["seen on b"]
        assert on_c.post("/api/logout").is_success
    with _session(a, cookie, csrf) as on_a:
        assert on_a.get("/api/me").status_code == 401  # logged out on c: gone on a too


def test_failed_logins_count_across_serve_processes(three_serves: list[str]) -> None:
    """Each process allows FREE_FAILURES failures of a name; spread over the processes, the
    attempts must still reach the back-off (a per-process count would answer 401 here)."""
    wrong = {"username": ADMIN, "password": "not the password"}
    for base in three_serves[:FREE_FAILURES]:
        assert httpx2.post(f"{base}/api/login", json=wrong).status_code == 401
    refused = httpx2.post(f"{three_serves[-1]}/api/login", json=wrong)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1


@contextmanager
def _serve_printing(env: dict[str, str], console: Path) -> Iterator[str]:
    """`casescope serve` with its console in a file (where the setup token is printed)."""
    port = free_port()
    with console.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "casescope", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(base, proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(30)


def test_the_setup_token_printed_by_one_process_works_on_another(
    tmp_path: Path,
    postgres_cluster,  # type: ignore[no-untyped-def]
) -> None:
    """Behind a balancer the setup form may be answered by any process: each process's
    printed token is valid on all of them, until the first admin exists."""
    env = serve_env(tmp_path / "home") | {"CASESCOPE_DATABASE_URL": postgres_cluster.database()}
    with ExitStack() as stack:
        a, b = (
            stack.enter_context(
                _serve_printing(
                    env | {"CASESCOPE_INDEX_URL": f"chdb://{tmp_path / f'index-{n}'}"},
                    tmp_path / f"console-{n}.txt",
                )
            )
            for n in "ab"
        )
        printed = (tmp_path / "console-a.txt").read_text()
        token = re.search(r"One-time setup token: (\S+)", printed).group(1)  # type: ignore[union-attr]
        body = {"username": ADMIN, "password": PASSWORD}
        wrong = httpx2.post(f"{b}/api/setup", json=body | {"setup_token": "x" * 32})
        assert wrong.status_code == 403
        made = httpx2.post(f"{b}/api/setup", json=body | {"setup_token": token})
        assert made.status_code == 200, made.text
        again = httpx2.post(f"{a}/api/setup", json=body | {"setup_token": token})
        assert again.status_code == 409  # done, on every process
        login = httpx2.post(f"{a}/api/login", json=body)
        assert login.status_code == 200

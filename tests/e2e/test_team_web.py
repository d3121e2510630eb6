"""A stateless web tier: three real `casescope serve` processes on one PostgreSQL database
and one home, as behind a load balancer. A session opened on one is honoured by the others
(cookie and CSRF token come from the database), a change made through a second one is seen
on a third, a job's progress streams (SSE) from a process that did not start it, a logout on
one ends the session everywhere, and failed logins count across processes.

The processes share one event index over HTTP (the `clickhouse_http` endpoint: the
transport's test double over chDB, or CASESCOPE_TEST_CLICKHOUSE_URL's server): the events
one process's job indexed are read back through the others.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx2
import pytest

from tests.browser.support import (
    ADMIN,
    PASSWORD,
    create_admin,
    serve,
    serve_env,
)
from tests.conftest import ClickHouseEndpoint
from tests.e2e.test_ingest_cli import evtx_count

SAMPLE = "Execution/Sysmon_Exec_CompiledHTML.evtx"
#: Failed logins a user name may have before back-off (CASESCOPE_LOGIN_ATTEMPTS_PER_MINUTE).
FREE_FAILURES = 2
TERMINAL = {"completed", "failed", "cancelled"}
#: Bound on the wait for a finished job's events to be loaded; reaching it fails the test.
WAIT_SECONDS = 120


@pytest.fixture(scope="module")
def three_serves(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_cluster,  # type: ignore[no-untyped-def]
    clickhouse_http: ClickHouseEndpoint,
) -> Iterator[list[str]]:
    """Base URLs of three serve processes sharing the home, the secret key, the DB and the
    event index; started once for the module's tests (each start costs seconds of a core),
    which use names of their own: one logs in as the admin, one fails logins of another."""
    home = tmp_path_factory.mktemp("team-web") / "home"
    env = serve_env(home) | {
        "CASESCOPE_DATABASE_URL": postgres_cluster.database(),
        "CASESCOPE_INDEX_URL": clickhouse_http.emptied(),
        "CASESCOPE_LOGIN_ATTEMPTS_PER_MINUTE": str(FREE_FAILURES),
    }
    create_admin(env)
    with ExitStack() as stack:
        yield [stack.enter_context(serve(env)) for _ in range(3)]


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


def _indexed(client: httpx2.Client, case_id: int) -> int:
    """The case's events in the shared index, once its loads are done (a serve process
    loads what is ready every few seconds)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        page = client.get(f"/api/cases/{case_id}/events", params={"exact_total": "true"})
        assert page.status_code == 200, page.text
        if page.json()["total"] > 0 or time.monotonic() > deadline:
            return page.json()["total"]
        time.sleep(0.5)


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
        events = evtx_count(sample)
        for client in (on_c, on_b):  # loaded by whichever process holds the load lease
            assert _indexed(client, case_id) == events
        one = on_c.get(f"/api/cases/{case_id}/events/{file_id}/1")
        assert one.status_code == 200 and one.json()["file_id"] == file_id
        mark = {"kind": "tag", "label": "seen on b"}
        assert on_b.post(f"/api/cases/{case_id}/events/{file_id}/1/marks", json=mark).is_success
        tags = on_c.get(f"/api/cases/{case_id}/tags").json()
        assert [t["label"] for t in tags] == ["seen on b"]
        assert on_c.post("/api/logout").is_success
    with _session(a, cookie, csrf) as on_a:
        assert on_a.get("/api/me").status_code == 401  # logged out on c: gone on a too


def test_failed_logins_count_across_serve_processes(three_serves: list[str]) -> None:
    """Each process allows FREE_FAILURES failures of a name; spread over the processes, the
    attempts must still reach the back-off (a per-process count would answer 401 here). The
    name is not the admin's, which the other test on these processes logs in as: a name
    counts its failures whether or not an account has it (web/ratelimit.py)."""
    wrong = {"username": "not-the-admin", "password": "not the password"}
    for base in three_serves[:FREE_FAILURES]:
        assert httpx2.post(f"{base}/api/login", json=wrong).status_code == 401
    refused = httpx2.post(f"{three_serves[-1]}/api/login", json=wrong)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1


def test_the_setup_token_printed_by_one_process_works_on_another(
    tmp_path: Path,
    postgres_cluster,  # type: ignore[no-untyped-def]
    clickhouse_http: ClickHouseEndpoint,
) -> None:
    """Behind a balancer the setup form may be answered by any process: each process's
    printed token is valid on all of them, until the first admin exists."""
    env = serve_env(tmp_path / "home") | {
        "CASESCOPE_DATABASE_URL": postgres_cluster.database(),
        "CASESCOPE_INDEX_URL": clickhouse_http.emptied(),
    }
    with ExitStack() as stack:
        a, b = (stack.enter_context(serve(env, tmp_path / f"console-{n}.txt")) for n in "ab")
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

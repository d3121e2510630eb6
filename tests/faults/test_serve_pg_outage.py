"""`casescope serve` while PostgreSQL (the metadata DB) is stopped, and after it is started.

During the outage a request that needs the database answers 503 with a sentence that says
so (JSON for the API, a page for a browser), `/health` says the database is unreachable,
and serve's background loops (index loader, pool watcher, health refresher) wait for it
without a traceback: the console has one line for the outage, the log one for its end. Once the
server is back the same requests succeed, on the same session, and a file uploaded then is
processed and searchable.

The cluster is this module's own: stopping the suite's shared one would break every other
PostgreSQL test of this process.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx2

from tests.browser.support import api_client, create_admin, serve, serve_env, upload_searchable
from tests.postgres import PostgresCluster

#: Bounds on waits for something that must happen; reaching one fails the test (a hang).
WAIT_SECONDS = 120
#: Long enough for every background loop of serve (each runs at least once a second) to meet
#: the outage a few times: each time must stay quiet.
OUTAGE_SECONDS = 4.0
SAMPLE = "Execution/Sysmon_Exec_CompiledHTML.evtx"
UNREACHABLE = "metadata database is unreachable"


def _wait_for(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def _health(base: str) -> httpx2.Response:
    return httpx2.get(f"{base}/health", timeout=30)  # details: 127.0.0.1 is allow-listed


def _assert_unavailable(http: httpx2.Client, base: str) -> None:
    """What callers see while the database is down."""
    api = http.get("/api/cases")
    assert api.status_code == 503, api.text
    assert UNREACHABLE in api.json()["detail"]
    assert api.headers["retry-after"]
    page = http.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 503, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert UNREACHABLE in page.text and "Traceback" not in page.text
    _wait_for("/health to see the outage", lambda: _health(base).status_code == 503)
    health = _health(base).json()
    assert health["status"] == "degraded" and health["db"] == "unreachable", health
    assert UNREACHABLE in health["detail"]


def test_serve_rides_out_a_postgres_restart(
    private_cluster: PostgresCluster, attack_samples: Path, tmp_path: Path
) -> None:
    env = serve_env(tmp_path / "home") | {
        "CASESCOPE_DATABASE_URL": private_cluster.database(),
        "CASESCOPE_INDEX_URL": f"chdb://{tmp_path / 'index'}",
    }
    create_admin(env)
    sample = tmp_path / Path(SAMPLE).name
    shutil.copy(attack_samples / SAMPLE, sample)
    console = tmp_path / "serve.log"
    with serve(env, console) as base, api_client(base) as http:
        case_id = http.post("/api/cases", json={"name": "outage"}).json()["id"]
        private_cluster.halt()
        try:
            time.sleep(OUTAGE_SECONDS)
            _assert_unavailable(http, base)
        finally:
            private_cluster.resume()
        _wait_for("/health to see the database", lambda: _health(base).status_code == 200)
        assert _health(base).json()["db"] == "ok"
        assert http.get("/api/cases").status_code == 200
        assert http.get("/", headers={"Accept": "text/html"}).status_code == 200
        upload_searchable(http, case_id, [sample])  # a job submitted afterwards completes
    output = console.read_text()
    assert "Traceback" not in output, output
    assert output.count("metadata database unreachable (") == 1, output  # one line for it
    log = (tmp_path / "home" / "logs" / "casescope.log").read_text()
    assert "metadata database reachable again" in log, log  # a warning: in the log file

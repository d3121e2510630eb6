"""The real `casescope` commands in team configuration: metadata and queue on PostgreSQL
(the suite's throwaway cluster), the event index on the ClickHouse-server implementation
(over clickhouse-connect's chDB interface, or CASESCOPE_TEST_CLICKHOUSE_URL's server)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx2
import pytest

from tests.browser.support import serve, serve_env
from tests.conftest import ClickHouseEndpoint
from tests.e2e.conftest import Cli
from tests.e2e.test_ingest_cli import evtx_count
from tests.integration.team.test_server_index import SERVER_URL, index_url

SAMPLES = (
    "Execution/Sysmon_Exec_CompiledHTML.evtx",
    "Command and Control/bits_openvpn.evtx",
    "AutomatedTestingTools/PanacheSysmon_vs_AtomicRedTeam01.evtx",
)


@pytest.fixture
def team_cli(tmp_path: Path, postgres_cluster) -> Cli:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    return Cli(
        home,
        extra={
            "CASESCOPE_DATABASE_URL": postgres_cluster.database(),
            "CASESCOPE_INDEX_URL": index_url(home),
        },
    )


def _evidence(tmp_path: Path, attack_samples: Path) -> Path:
    folder = tmp_path / "evidence"
    folder.mkdir()
    for name in SAMPLES:
        shutil.copy(attack_samples / name, folder / Path(name).name)
    return folder


def test_ingest_search_status_and_doctor_in_team_mode(
    team_cli: Cli, tmp_path: Path, attack_samples: Path
) -> None:
    folder = _evidence(tmp_path, attack_samples)
    events = sum(evtx_count(path) for path in folder.iterdir())
    team_cli.run("ingest", "--case", "team", str(folder))
    status = json.loads(team_cli.run("status", "--format", "json").stdout)
    assert status["files_by_status"] == {"completed": len(SAMPLES)}
    assert status["events_indexed"] == status["events_parsed"] == events
    found = team_cli.run("search", "--case", "team", "--format", "jsonl", "--limit", "5000", "")
    assert len(found.stdout.splitlines()) == events
    doctor = team_cli.run("doctor", "--check").stdout
    transport = "http" if SERVER_URL and SERVER_URL.startswith("clickhouse:") else "chdb"
    if not SERVER_URL:
        assert f"mode: team (metadata DB: postgresql, event index: {transport})" in doctor
    assert "metadata DB: ok postgresql: reachable, schema at" in doctor
    assert "event index: ok" in doctor and "DDL version 1" in doctor
    assert "every file accounted for" in doctor


def test_an_unreachable_index_server_is_a_clear_error_at_start(cli: Cli) -> None:
    """Nothing listens on port 1: each command stops at its start, naming the setting (the
    malformed URLs: tests/unit/store/test_index_url.py)."""
    cli.extra["CASESCOPE_INDEX_URL"] = "clickhouse://analyst:s3cret@127.0.0.1:1/casescope"
    says = "cannot open the event index at http://analyst@127.0.0.1:1/casescope"
    for command in (("status",), ("ingest", "--case", "c", str(cli.home))):
        proc = cli.run(*command, check=False)
        assert proc.returncode == 1
        assert "error: CASESCOPE_INDEX_URL: " in proc.stderr and says in proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout
        assert "s3cret" not in proc.stderr  # the password is never shown
    evidence = cli.home / "evidence"  # nothing was taken in
    assert not evidence.exists() or not any(evidence.rglob("*"))


def test_health_reports_the_team_mode_and_its_parts(tmp_path: Path, postgres_cluster) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    env = serve_env(home) | {
        "CASESCOPE_DATABASE_URL": postgres_cluster.database(),
        "CASESCOPE_INDEX_URL": index_url(home),
    }
    with serve(env) as base:
        health = httpx2.get(f"{base}/health").json()  # 127.0.0.1 is allowed the details
    assert health["status"] == "ok"
    assert health["mode"] == "team" and health["db_dialect"] == "postgresql"
    assert health["index_transport"] == ("chdb" if not SERVER_URL else health["index_transport"])
    parts = {check["part"]: check for check in health["checks"]}
    assert set(parts) == {"metadata DB", "event index", "home"}
    assert all(check["ok"] for check in parts.values()), parts
    assert "DDL version 1" in parts["event index"]["detail"]
    assert "GiB free" in parts["home"]["detail"]


def test_a_bad_setting_is_one_line_naming_it(cli: Cli) -> None:
    """A worker host with a malformed CASESCOPE_HOST_NAME (or any setting out of range) stops
    at its start with the variable's name, not a pydantic traceback."""
    cli.extra["CASESCOPE_HOST_NAME"] = "bad host"
    proc = cli.run("worker", "--workers", "1", check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: CASESCOPE_HOST_NAME: ")
    assert "Traceback" not in proc.stderr + proc.stdout
    cli.extra["CASESCOPE_HOST_NAME"] = "lab-7"
    cli.extra["CASESCOPE_WORKERS"] = "0"
    proc = cli.run("status", check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("error: CASESCOPE_WORKERS: ")


def test_a_wrong_index_password_is_a_clear_error_at_start(
    cli: Cli, clickhouse_http: ClickHouseEndpoint
) -> None:
    """The server answers, but refuses the login (ClickHouse's code 516): each command stops
    at its start naming the setting, without a traceback and without the password."""
    url = urlsplit(clickhouse_http.url)
    assert url.password and url.hostname
    wrong = url._replace(netloc=f"{url.username}:not-{url.password}@{url.hostname}:{url.port}")
    cli.extra["CASESCOPE_INDEX_URL"] = urlunsplit(wrong)
    says = f"cannot open the event index at http://{url.username}@{url.hostname}:{url.port}/"
    for command in (("status",), ("worker",)):  # a command, and a worker host at its start
        proc = cli.run(*command, check=False)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.startswith("error: CASESCOPE_INDEX_URL: ") and says in proc.stderr
        assert "516" in proc.stderr and "Authentication failed" in proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout
        assert url.password not in proc.stderr + proc.stdout  # neither the wrong one nor ours

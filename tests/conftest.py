"""Shared fixtures: where the read-only sample data lives.

Sample evidence and Sigma rules stay outside the repository, in ``../shared/data`` beside the
checkout, or wherever ``CASESCOPE_DATA`` points.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.postgres import PostgresCluster

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("CASESCOPE_DATA", REPO_ROOT.parent / "shared" / "data"))
#: The hosts test apps answer: starlette's TestClient sends `Host: testserver`, browser tests
#: and `serve` processes use 127.0.0.1 (tests/web/test_access.py checks the real default).
TEST_ALLOWED_HOSTS = "testserver,localhost,127.0.0.1,::1"


#: Set in the child process a `fresh_process` test runs in.
FRESH_PROCESS_ENV = "CASESCOPE_TEST_FRESH_PROCESS"


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run a `fresh_process` test in a new interpreter: chDB's memory limit counts the whole
    process's RSS, which in a long pytest run is that of every test before it."""
    if pyfuncitem.get_closest_marker("fresh_process") is None or os.environ.get(FRESH_PROCESS_ENV):
        return None
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", pyfuncitem.nodeid]
    child = subprocess.run(
        command,
        cwd=pyfuncitem.config.rootpath,
        env={**os.environ, FRESH_PROCESS_ENV: "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        pytest.fail(f"in a fresh process:\n{child.stdout[-6000:]}{child.stderr[-2000:]}", False)
    return True


@pytest.fixture(autouse=True, scope="session")
def _allowed_hosts() -> None:
    os.environ.setdefault("CASESCOPE_ALLOWED_HOSTS", TEST_ALLOWED_HOSTS)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL server of this test process (started when a test first asks for it)."""
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.fail(f"sample data not found at {DATA_DIR} (set CASESCOPE_DATA)")
    return DATA_DIR


@pytest.fixture(scope="session")
def attack_samples(data_dir: Path) -> Path:
    return data_dir / "evtx" / "attack-samples"


@pytest.fixture(scope="session")
def sigma_dir(data_dir: Path) -> Path:
    return data_dir / "sigma"


#: A real ClickHouse server for the team-mode tests (scripts/team-smoke.sh); unset, they run
#: on the ClickHouse-HTTP test double over chDB (tests/clickhouse_http.py).
TEST_CLICKHOUSE_URL = os.environ.get("CASESCOPE_TEST_CLICKHOUSE_URL")
#: The double's login (the tests also send a wrong password to see it refused).
DOUBLE_USER = "casescope"


@dataclass(frozen=True)
class ClickHouseEndpoint:
    """A ClickHouse HTTP endpoint every process of a test can reach."""

    #: CASESCOPE_INDEX_URL for the team's processes (with the password).
    url: str

    def emptied(self) -> str:
        """The URL, its events table emptied first (tests count every row of it)."""
        from casescope.store.index_url import parse_index_url
        from casescope.store.server_index import ClickHouseServerIndex

        index = ClickHouseServerIndex(parse_index_url(self.url))
        try:
            index.execute("TRUNCATE TABLE casescope.events")
        finally:
            index.close()
        return self.url


@contextmanager
def clickhouse_double(path: Path, hold_insert: Path | None = None) -> Iterator[str]:
    """The ClickHouse-HTTP test double over chDB (tests/clickhouse_http.py) on the data
    directory `path`, in a process of its own: yields its URL, stops it at the end."""
    password = secrets.token_hex(12)
    command = [sys.executable, "-m", "tests.clickhouse_http", "--path", str(path)]
    command += ["--user", DOUBLE_USER, "--password", password]
    if hold_insert is not None:
        command += ["--hold-insert", str(hold_insert)]
    server = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        said = server.stdout.readline().split()  # '' when it died before answering
        assert said[:1] == ["listening"], f"the ClickHouse-HTTP double did not start: {said}"
        yield f"clickhouse://{DOUBLE_USER}:{password}@127.0.0.1:{said[1]}/casescope"
    finally:
        server.terminate()
        server.wait(30)


@pytest.fixture(scope="session")
def clickhouse_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseEndpoint]:
    """A ClickHouse HTTP endpoint for the session: CASESCOPE_TEST_CLICKHOUSE_URL's server,
    or the test double over chDB in a process of its own, stopped at the end."""
    if TEST_CLICKHOUSE_URL:
        yield ClickHouseEndpoint(TEST_CLICKHOUSE_URL)
        return
    with clickhouse_double(tmp_path_factory.mktemp("clickhouse-http") / "chdb") as url:
        yield ClickHouseEndpoint(url)

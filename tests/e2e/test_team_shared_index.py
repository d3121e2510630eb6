"""Several processes on one event index over the network, in team configuration: metadata
and queue on PostgreSQL (the suite's cluster), the index on a ClickHouse HTTP endpoint
(`clickhouse_http`: the test double over chDB, or CASESCOPE_TEST_CLICKHOUSE_URL's server).

chDB alone holds one data directory per process; an HTTP endpoint lets two `casescope
ingest` loaders and a searcher share the index as a team's processes share a server.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from sqlalchemy import create_engine, func, select

from casescope.model.enums import IndexState
from casescope.model.tables import EvidenceFile
from tests.conftest import REPO_ROOT, ClickHouseEndpoint
from tests.e2e.conftest import Cli
from tests.e2e.test_ingest_cli import evtx_count

#: Files per loader: the largest attack samples of distinct content, dealt out in turn.
FILES_PER_LOADER = 3
#: Events per INSERT: each file loads in several, so the loaders' loads interleave.
LOAD_BATCH_ROWS = 400


@pytest.fixture
def team_cli(tmp_path: Path, postgres_cluster, clickhouse_http: ClickHouseEndpoint) -> Cli:  # type: ignore[no-untyped-def]
    return Cli(
        tmp_path / "home",
        extra={
            "CASESCOPE_DATABASE_URL": postgres_cluster.database(),
            "CASESCOPE_INDEX_URL": clickhouse_http.emptied(),
            "CASESCOPE_WORKERS": "1",
            "CASESCOPE_LOAD_BATCH_ROWS": str(LOAD_BATCH_ROWS),
        },
    )


def _evidence(attack_samples: Path, root: Path, folders: int) -> list[Path]:
    """`folders` folders of FILES_PER_LOADER samples each, no content in two of them."""
    by_content: dict[str, Path] = {}
    for path in sorted(attack_samples.rglob("*.evtx"), key=lambda p: (-p.stat().st_size, p)):
        by_content.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), path)
    chosen = list(by_content.values())[: FILES_PER_LOADER * folders]
    made = [root / f"evidence-{n}" for n in range(folders)]
    for n, path in enumerate(chosen):
        made[n % folders].mkdir(exist_ok=True)
        shutil.copy(path, made[n % folders] / f"{n:02d}-{path.name}")
    return made


def _searcher(cli: Cli, stop: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.team_searcher", "search", str(stop), "1", "2"],
        cwd=REPO_ROOT,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _inspect(cli: Cli) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "tests.e2e.team_searcher", "inspect"],
        cwd=REPO_ROOT,
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return orjson.loads(done.stdout)


def _names(url: str) -> dict[str, str]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(select(EvidenceFile.id, EvidenceFile.original_path)).all()
    engine.dispose()
    return {str(file_id): Path(path).name for file_id, path in rows}


def test_two_loaders_and_a_searcher_share_one_index(
    team_cli: Cli, tmp_path: Path, attack_samples: Path
) -> None:
    """Two `casescope ingest` processes (each its own workers, each loading its files as
    they finish, under per-file load claims) and a third process searching throughout:
    every search answers, and every file's events end in the index exactly once."""
    folders = _evidence(attack_samples, tmp_path, 2)
    expected = {p.name: evtx_count(p) for folder in folders for p in folder.iterdir()}
    team_cli.run("case", "create", "one")  # the schema, before three processes open the DB
    team_cli.run("case", "create", "two")
    stop = tmp_path / "stop"
    searcher = _searcher(team_cli, stop)
    try:
        loaders = [
            team_cli.popen("ingest", "--case", case, str(folder))
            for case, folder in zip(("one", "two"), folders, strict=True)
        ]
        for loader in loaders:
            _, errors = loader.communicate(timeout=300)
            assert loader.returncode == 0, errors[-4000:]
    finally:
        stop.touch()
        out, errors = searcher.communicate(timeout=120)
    assert searcher.returncode == 0, errors[-4000:]
    searched = json.loads(out)
    assert searched["errors"] == [] and searched["searches"] > 0
    index = _inspect(team_cli)
    names = _names(team_cli.extra["CASESCOPE_DATABASE_URL"])
    assert {names[file_id]: n for file_id, n in index["by_file"].items()} == expected
    assert index["rows"] == index["distinct"] == sum(expected.values())
    status = json.loads(team_cli.run("status", "--format", "json").stdout)
    assert status["files_by_status"] == {"completed": len(expected)}
    assert status["events_indexed"] == status["events_parsed"] == sum(expected.values())


def _wait_loaded(url: str, files: int) -> None:
    """Until `files` files are loaded into the index (bounded: reaching the bound fails the
    test, a hang)."""
    engine = create_engine(url)
    try:
        for _ in range(1200):
            with engine.connect() as connection:
                loaded = connection.scalar(
                    select(func.count()).where(EvidenceFile.index_state == IndexState.LOADED)
                )
            if loaded == files:
                return
            time.sleep(0.25)
    finally:
        engine.dispose()
    raise AssertionError(f"{loaded} of {files} files loaded")


def test_worker_hosts_load_the_files_they_process(
    team_cli: Cli, tmp_path: Path, attack_samples: Path
) -> None:
    """Two worker hosts (`casescope worker`, each its own CASESCOPE_HOST_NAME) load into the
    shared index beside their workers, under per-file claims: with no `serve`, `status` or
    waiting `ingest` to load, every file queued by `ingest --no-wait` ends in the index,
    each event once."""
    (folder,) = _evidence(attack_samples, tmp_path, 1)
    expected = {p.name: evtx_count(p) for p in folder.iterdir()}
    team_cli.run("case", "create", "one")
    hosts = [
        subprocess.Popen(
            [sys.executable, "-m", "casescope", "worker", "--workers", "1"],
            env={**team_cli.env, "CASESCOPE_HOST_NAME": f"host-{n}"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # a host of its own: stopped as a process group
        )
        for n in range(2)
    ]
    try:
        team_cli.run("ingest", "--no-wait", "--case", "one", str(folder))
        _wait_loaded(team_cli.extra["CASESCOPE_DATABASE_URL"], len(expected))
    finally:
        for host in hosts:
            os.killpg(host.pid, signal.SIGTERM)
        errors = [host.communicate(timeout=120)[1] for host in hosts]
    assert [host.returncode for host in hosts] == [0, 0], errors
    index = _inspect(team_cli)
    names = _names(team_cli.extra["CASESCOPE_DATABASE_URL"])
    assert {names[file_id]: n for file_id, n in index["by_file"].items()} == expected
    assert index["rows"] == index["distinct"] == sum(expected.values())

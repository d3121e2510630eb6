"""Workers on several hosts: two `casescope worker` pools as two "hosts" (separate process
groups, separate CASESCOPE_HOST_NAME) on one PostgreSQL queue and one home. `status` shows
each host with its workers and the files they hold; every process of one host is SIGKILLed
while it holds files; its leases run out, the other host processes those files again, and
every file ends in the index exactly once (per-file event counts equal the `evtx` crate's).

Workers never open the event index: the loading is left to the index's users (`serve`, or
here `casescope status`, run after the workers), so this test needs no index that two
processes share (chDB is one process per data directory).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine

from casescope.model.enums import ACTIVE_JOB_STATES, JobState
from casescope.model.tables import EvidenceFile, Job, WorkerRecord
from tests.browser.support import serve_env
from tests.e2e.test_ingest_cli import evtx_count

HOSTS = ("host-a", "host-b")
WORKERS_PER_HOST = 2
#: Bounds on waits for something that must happen; reaching one fails the test (a hang).
WAIT_SECONDS = 300
#: The largest attack samples: each takes a worker long enough to be caught holding it.
FILES = 16


def _samples(attack_samples: Path, folder: Path) -> list[Path]:
    """The FILES largest samples of distinct content (the intake skips duplicates)."""
    folder.mkdir()
    by_content: dict[str, Path] = {}
    for path in sorted(attack_samples.rglob("*.evtx"), key=lambda p: (-p.stat().st_size, p)):
        by_content.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), path)
    copies = []
    for n, path in enumerate(list(by_content.values())[:FILES]):
        copies.append(folder / f"{n:02d}-{path.name}")
        shutil.copy(path, copies[-1])
    return copies


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "casescope", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _wait_for(what: str, check) -> object:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WAIT_SECONDS
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return found


class Host:
    """One worker "host": `casescope worker` in its own process group."""

    def __init__(self, env: dict[str, str], name: str, logs: Path) -> None:
        self.name = name
        with (logs / f"{name}.log").open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "casescope", "worker", "--workers", str(WORKERS_PER_HOST)],
                env=env | {"CASESCOPE_HOST_NAME": name},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a process group of its own: the "host"
            )

    def kill(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self.process.pid, sig)
        self.process.wait(WAIT_SECONDS)


def _running_files(engine: Engine, host: str) -> set[int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(Job.file_id).where(
                Job.state == JobState.RUNNING, Job.worker_id.startswith(f"{host}-")
            )
        )
        return {file_id for (file_id,) in rows}


def _registered(engine: Engine, host: str) -> bool:
    with engine.connect() as connection:
        rows = connection.execute(select(WorkerRecord.id).where(WorkerRecord.host == host)).all()
    return len(rows) == WORKERS_PER_HOST


def _queue_empty(engine: Engine) -> bool:
    with engine.connect() as connection:
        active = connection.execute(select(Job.id).where(Job.state.in_(ACTIVE_JOB_STATES)))
        return active.first() is None


@pytest.fixture
def team_env(tmp_path: Path, postgres_cluster) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    env = serve_env(tmp_path / "home") | {
        "CASESCOPE_DATABASE_URL": postgres_cluster.database(),
        "CASESCOPE_INDEX_URL": f"chdb://{tmp_path / 'index'}",
        "CASESCOPE_GROUP_MAX_FILES": "1",  # one file per claim: files spread over the hosts
        "CASESCOPE_LEASE_SECONDS": "4",
    }
    yield env


def test_a_host_killed_mid_run_loses_its_files_to_the_other(
    team_env: dict[str, str], tmp_path: Path, attack_samples: Path
) -> None:
    url = team_env["CASESCOPE_DATABASE_URL"]
    engine = create_engine(url)
    samples = _samples(attack_samples, tmp_path / "evidence")
    expected = {p.name: evtx_count(p) for p in samples}
    _cli(team_env, "case", "create", "hosts")  # the schema, before two pools open the DB
    host_a = Host(team_env, HOSTS[0], tmp_path)
    host_b = Host(team_env, HOSTS[1], tmp_path)
    try:
        for name in HOSTS:
            _wait_for(f"{name}'s workers", lambda name=name: _registered(engine, name))
        hosts = json.loads(_cli(team_env, "status", "--format", "json"))["hosts"]
        assert [(h["host"], h["workers"], h["files_held"]) for h in hosts] == [
            (name, WORKERS_PER_HOST, 0) for name in HOSTS
        ]
        _cli(team_env, "ingest", "--case", "hosts", "--no-wait", str(tmp_path / "evidence"))
        held = _wait_for("host-a to hold a file", lambda: _running_files(engine, HOSTS[0]))
        host_a.kill(signal.SIGKILL)  # every process of host-a, at once
        _wait_for("the queue to empty", lambda: _queue_empty(engine))
        status = json.loads(_cli(team_env, "status", "--format", "json"))
        assert [h["host"] for h in status["hosts"]] == [HOSTS[1]]  # a dead host drops out
        with engine.connect() as connection:
            jobs = connection.execute(select(Job.file_id, Job.state, Job.worker_id)).all()
        assert {state for _f, state, _w in jobs} == {JobState.DONE.value}
        assert len(jobs) == FILES
        # host-a may have finished a file in the moment between the look and the kill; the
        # others it held, host-b took over once their leases ran out
        taken_over = {f for f, _s, worker in jobs if f in held and worker.startswith(HOSTS[1])}
        assert taken_over
    finally:
        host_a.kill(signal.SIGKILL)
        host_b.kill(signal.SIGTERM)
    status = json.loads(_cli(team_env, "status", "--format", "json"))  # loads, then counts
    assert status["files_by_status"] == {"completed": FILES}
    assert status["events_indexed"] == status["events_parsed"] == sum(expected.values())
    found = _cli(
        team_env, "search", "--case", "hosts", "--format", "jsonl", "--limit", "100000", ""
    )
    per_file = Counter(json.loads(line)["file_id"] for line in found.splitlines())
    with engine.connect() as connection:
        rows = connection.execute(select(EvidenceFile.id, EvidenceFile.original_path))
        names = {file_id: path for file_id, path in rows}
    assert {Path(names[i]).name: n for i, n in per_file.items()} == expected
    engine.dispose()

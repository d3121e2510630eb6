"""Workers on several hosts: two `casescope worker` pools as two "hosts" (separate process
groups, separate CASESCOPE_HOST_NAME) on one PostgreSQL queue and one home. `status` shows
each host with its workers and the files they hold.

Every process of one host is stopped (SIGSTOP: a frozen machine, or a pool suspended with
Ctrl-Z) while each of its workers is inside the transaction that completes its file, holding
the job's row lock. Once their leases run out the other host processes those files while the
first is still stopped (the stopped host's transactions must not keep them from it); then
the stopped host is SIGKILLed, and every file ends in the index exactly once (per-file event
counts equal the `evtx` crate's).

The moment is made, not waited for: the test holds a lock on the segments table, which a
worker's completing transaction writes after it marked its job done, so every worker stops
there with one file; the stop comes while they wait, and the lock is let go after it. (A
poll for "host-a holds a file" raced the workers: the whole batch is done in about as long
as `ingest --no-wait` takes to return on a loaded machine.)

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

import psutil
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Connection, Engine

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

    def freeze(self) -> None:
        """SIGSTOP every process of the host, and wait until each one is stopped."""
        os.killpg(self.process.pid, signal.SIGSTOP)
        root = psutil.Process(self.process.pid)
        _wait_for(
            f"{self.name} to stop",
            lambda: all(
                p.status() == psutil.STATUS_STOPPED for p in [root, *root.children(recursive=True)]
            ),
        )


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


@contextlib.contextmanager
def _gate(engine: Engine) -> Iterator[Connection]:
    """A lock that holds every worker in its completing transaction, after it marked its
    job done and before it registers the file's segment (reads go on)."""
    with engine.connect() as connection, connection.begin():
        connection.execute(text("LOCK TABLE segments IN SHARE MODE"))
        yield connection


def _waiting_on(engine: Engine, gate: Connection) -> int:
    """How many sessions wait for the gate's lock."""
    pid = gate.execute(text("SELECT pg_backend_pid()")).scalar_one()
    query = text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))")
    with engine.connect() as connection:
        return connection.execute(query, {"pid": pid}).scalar_one()


def _done_by(engine: Engine, files: set[int], host: str) -> bool:
    """Whether the jobs of `files` are all done, by workers of `host`."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(Job.state, Job.worker_id).where(Job.file_id.in_(files))
        ).all()
    return all(state == JobState.DONE and w.startswith(f"{host}-") for state, w in rows)


def _lock_waits(engine: Engine) -> str:
    """The sessions that wait for a lock, and whom for (a failure's evidence)."""
    query = text(
        "SELECT pid, pg_blocking_pids(pid), state, left(query, 100) FROM pg_stat_activity "
        "WHERE datname = current_database() AND cardinality(pg_blocking_pids(pid)) > 0"
    )
    with engine.connect() as connection:
        return "\n".join(str(tuple(row)) for row in connection.execute(query)) or "none"


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
        with _gate(engine) as gate:
            _cli(team_env, "ingest", "--case", "hosts", "--no-wait", str(tmp_path / "evidence"))
            workers = WORKERS_PER_HOST * len(HOSTS)
            _wait_for("every worker at the gate", lambda: _waiting_on(engine, gate) == workers)
            held = _running_files(engine, HOSTS[0])
            assert len(held) == WORKERS_PER_HOST  # one file each (CASESCOPE_GROUP_MAX_FILES)
            host_a.freeze()  # every process of host-a, each worker mid-transaction
        deadline = time.monotonic() + WAIT_SECONDS
        while not _done_by(engine, held, HOSTS[1]):
            if time.monotonic() > deadline:
                with engine.connect() as connection:
                    rows = connection.execute(
                        select(
                            Job.file_id, Job.state, Job.worker_id, Job.attempts, Job.last_error
                        ).where(Job.file_id.in_(held))
                    ).all()
                waits = _lock_waits(engine)
                raise AssertionError(
                    f"host-b never took {held} over; their jobs: {rows}; lock waits:\n{waits}"
                )
            time.sleep(0.2)
        host_a.kill(signal.SIGKILL)  # every process of host-a, at once
        _wait_for("the queue to empty", lambda: _queue_empty(engine))
        status = json.loads(_cli(team_env, "status", "--format", "json"))
        assert [h["host"] for h in status["hosts"]] == [HOSTS[1]]  # a dead host drops out
        with engine.connect() as connection:
            jobs = connection.execute(select(Job.file_id, Job.state, Job.worker_id)).all()
        assert {state for _f, state, _w in jobs} == {JobState.DONE.value}
        assert len(jobs) == FILES
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

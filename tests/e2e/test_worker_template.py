"""Workers are forked from a template that imported their modules, and die with their pool.

The template (multiprocessing's forkserver, started by the pool) pays the worker's imports
once; each worker forked from it starts at once. It must import only: a database engine, an
index handle, a thread or an open file in it would be shared by every worker forked from it.
And a worker is the template's child, not the pool's: when the pool is killed, the template
and every worker must go too (a SIGKILL leaves the pool no chance to stop them itself).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from sqlalchemy import select

from casescope.jobs.pool_process import pool_command
from casescope.model.tables import WorkerRecord
from tests.e2e.conftest import Cli
from tests.waiting import wait_for


def _worker_pids(cli: Cli) -> set[int]:
    with cli.db().read() as session:
        return set(session.scalars(select(WorkerRecord.pid)))


@pytest.fixture
def pool(cli: Cli) -> Iterator[subprocess.Popen]:
    """A pool of two idle workers (no --exit-when-idle: it stays until killed)."""
    cli.run("case", "create", "t")  # a home with its database
    started = subprocess.Popen(
        [sys.executable, "-P", "-m", "casescope", "worker", "--workers", "2"],
        cwd=cli.home,
        env=cli.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(_worker_pids(cli)) == 2, "two registered workers")
        yield started
    finally:
        if started.poll() is None:
            started.kill()
        started.wait()


def _template_of(pool: subprocess.Popen, workers: set[int]) -> psutil.Process:
    parents = {psutil.Process(pid).ppid() for pid in workers}
    assert len(parents) == 1, parents
    template = psutil.Process(parents.pop())
    assert template.pid != pool.pid, "workers are the pool's own children (spawned)"
    assert template.ppid() == pool.pid
    return template


def test_workers_are_forked_from_a_template_that_only_imported(
    cli: Cli, pool: subprocess.Popen
) -> None:
    workers = _worker_pids(cli)
    template = _template_of(pool, workers)

    command = template.cmdline()
    flags = command[1 : command.index("-c")]
    assert command[0] == sys.executable and "-P" in flags, command  # no directory on its path
    assert Path(template.cwd()) == cli.home
    mapped = {Path(m.path).name for m in template.memory_maps()}
    assert any(name.startswith("libarrow.so") for name in mapped), "worker modules not loaded"
    assert template.num_threads() == 1  # nothing started a thread in it
    opened = [f.path for f in template.open_files()]
    assert not [p for p in opened if p.startswith(str(cli.home))], opened  # no DB, no index
    assert not template.net_connections("inet")


def test_a_killed_pool_takes_its_template_and_workers_with_it(
    cli: Cli, pool: subprocess.Popen
) -> None:
    workers = _worker_pids(cli)
    template = _template_of(pool, workers)
    family = [template] + [psutil.Process(pid) for pid in workers]

    os.kill(pool.pid, signal.SIGKILL)
    pool.wait()

    wait_for(lambda: not any(map(_alive, family)), "the template and workers to exit", 60)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


#: Run as the pool `ingest` starts (its module and arguments after it), recording which of
#: WATCHED were imported when the template was started, and which at the pool's exit.
POOL_SPY = """
import json, runpy, sys
from multiprocessing import forkserver

WATCHED = ("sqlalchemy.orm", "casescope.model.db", "casescope.workqueue.queue", "typer", "rich")
seen = {}
start = forkserver.ensure_running

def spy():
    seen.setdefault("template", [m for m in WATCHED if m in sys.modules])
    start()

forkserver.ensure_running = spy
sys.argv = sys.argv[1:]
try:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
except SystemExit as exc:
    seen["code"] = exc.code
seen["exit"] = [m for m in WATCHED if m in sys.modules]
print(json.dumps(seen))
"""


def test_the_pool_that_ingest_starts_starts_its_template_before_its_own_imports(
    cli: Cli,
) -> None:
    """The template's imports and the pool's run side by side: when the template starts, the
    pool has imported neither SQLAlchemy's ORM nor the queue; and it never imports the CLI
    (Typer, Rich), which only `casescope worker` typed by hand needs."""
    cli.run("case", "create", "t")  # nothing queued: the pool exits once it has looked
    command = pool_command(1)
    module_at = command.index("-m") + 1
    done = subprocess.run(
        [sys.executable, "-P", "-c", POOL_SPY, *command[module_at:]],
        cwd=cli.home,
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["template"] == [], seen
    assert seen.get("code") in (None, 0), done.stderr
    assert "sqlalchemy.orm" in seen["exit"] and "casescope.workqueue.queue" in seen["exit"]
    assert "typer" not in seen["exit"] and "rich" not in seen["exit"], seen

"""`casescope ingest` starts its worker pool before it opens the metadata DB and takes in the
evidence (jobs/pool_process.py): the pool waits for the first queued file instead of exiting
idle, serves the whole ingest, and is ended when the command queues nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil

from casescope.jobs.registry import live_workers
from tests.e2e.conftest import Cli
from tests.waiting import wait_for

POOL_START = "starting a worker pool"
SAMPLE = "Credential Access/kerberos_pwd_spray_4771.evtx"


def _log(cli: Cli) -> list[str]:
    return (cli.home / "logs" / "casescope.log").read_text().splitlines()


def _pools_of(home: Path) -> list[psutil.Process]:
    """Pool processes whose working directory is `home` (a pool runs from its home)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if (
                "casescope.jobs.pool_main" in (proc.info["cmdline"] or [])
                and Path(proc.cwd()) == home.resolve()
            ):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_the_pool_starts_before_the_database_and_serves_the_whole_ingest(
    cli: Cli, attack_samples: Path
) -> None:
    result = cli.run("ingest", "--case", "c", str(attack_samples / SAMPLE))
    assert "1 completed" in result.stdout, result.stdout
    log = _log(cli)
    assert POOL_START in log[0], log[:3]  # before the new home's database was made
    assert any("created a new metadata database" in line for line in log[1:])
    assert sum(POOL_START in line for line in log) == 1  # no second pool was needed
    assert "--await-work" in log[0]


def test_an_ingest_that_queues_nothing_ends_its_pool(cli: Cli, attack_samples: Path) -> None:
    sample = attack_samples / SAMPLE
    cli.run("ingest", "--case", "c", str(sample))
    wait_for(lambda: not _pools_of(cli.home), "the first ingest's pool to exit")
    again = cli.run("ingest", "--case", "c", str(sample))  # a duplicate: nothing queued
    assert "0 queued, 1 duplicates" in again.stdout, again.stdout
    assert sum(POOL_START in line for line in _log(cli)) == 2  # it had started one
    # ended by the command, not after the pool's wait for work (60 s)
    wait_for(lambda: not _pools_of(cli.home), "the second ingest's pool to be ended", timeout=20)


def test_a_missing_input_starts_no_pool(cli: Cli, tmp_path: Path) -> None:
    result = cli.run("ingest", "--case", "c", str(tmp_path / "nope.evtx"), check=False)
    assert result.returncode == 1
    assert "no such file or folder" in result.stderr
    assert not any(POOL_START in line for line in _log(cli))


def test_a_pool_awaiting_work_exits_when_none_comes_or_others_serve(cli: Cli) -> None:
    command = [sys.executable, "-P", "-m", "casescope.jobs.pool_main", "--exit-when-idle"]
    cli.home.mkdir(parents=True)
    alone = subprocess.run([*command, "--await-work", "1"], env=cli.env, cwd=cli.home, timeout=120)
    assert alone.returncode == 0  # no work came within a second
    standing = cli.popen("worker", "--workers", "1")  # serves the queue until stopped
    try:
        db = cli.db()
        wait_for(lambda: live_workers(db, stale_after=5), "the standing worker to register")
        db.dispose()
        # it would wait ten minutes for work were the standing worker not serving
        ahead = subprocess.run(
            [*command, "--await-work", "600"], env=cli.env, cwd=cli.home, timeout=120
        )
        assert ahead.returncode == 0
    finally:
        standing.terminate()  # as a service manager stops a host's pool
        code = standing.wait(60)  # a standing pool used to wait for idle workers forever
    assert code == 0, standing.stderr.read() if standing.stderr else ""
    log = "\n".join(_log(cli))
    assert "live workers already serve the queue" in log
    assert "the worker pool was stopped" in log and "died" not in log

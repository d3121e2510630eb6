"""Benchmark: the bulk set in team configuration, with 1 and 2 worker "hosts", beside the
embedded figure from the same run, and a model of 4, 8 and 16 hosts.

Team configuration here: the metadata DB and job queue on a throwaway PostgreSQL cluster
(tests/postgres.py: Debian's server, fsync off), the event index on the ClickHouse-HTTP test
double over chDB (tests/clickhouse_http.py) in a process of its own, which every process
reaches over HTTP as it would a server, and the home shared by every "host". A host is a
`casescope worker` pool with its own CASESCOPE_HOST_NAME, in its own process group, whose
supervisor loads the files that wait beside its workers (jobs/host_loader.py, under per-file
load claims); the hosts of a run share this machine's cores, so `--workers-per-host`
defaults to the cores divided by the hosts (the 2-host run measures coordination overhead,
not more hardware).

What a team does, timed as its user waits: the hosts are running; `ingest --no-wait` takes
the evidence in while the hosts already process and load what it has queued; the wall runs
from the start of intake until every file is searchable (no job active, nothing waiting for
a load). Processing ends when no job is active; the load ends after it.

The model: a host of C cores processes C / (host CPU seconds per file, its loader
included) files/s; each host's loader takes (files it loaded) / (seconds it spent loading)
files/s, so N hosts load N times that; PostgreSQL's job claims are measured apart
(`--claim-files` fake jobs claimed in groups of 64 and finished by `--claim-procs`
processes). The modelled throughput of N hosts is the least of these; the line names which
one limits it, and its scaling is that throughput over N times one host's. ClickHouse's
inserts are not modelled: the double is one chDB process behind a Python HTTP server, not a
server; its observed rate is printed for what it is.

Usage: .venv/bin/python bench/team.py [--copies 42] [--hosts 1 2] [--cores-per-host 2]
       [--claim-files 20000] [--claim-procs 2]
Needs the PostgreSQL server binaries (scripts/postgres.sh installs them).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
# bench/ must not be on sys.path: bench/sigma.py would shadow pySigma's `sigma` namespace package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]
from bench.common import RssSampler, make_bulk_set, run_casescope
from tests.conftest import clickhouse_double
from tests.postgres import PostgresCluster

from casescope.config import Settings
from casescope.jobs.registry import live_workers
from casescope.model.db import Database
from casescope.model.enums import FileType, Operation
from casescope.model.tables import Case, EvidenceFile
from casescope.store.load_queue import load_waiting
from casescope.workqueue import queue

CASE = "bench"
MODEL_HOSTS = (1, 2, 4, 8, 16)
CLAIM_GROUP = 64


#: A host loader's log line (store/loader.py, `_load_pending`).
LOADED_LINE = re.compile(r"loaded (\d+) files \((\d+) rows\) in \d+ batches, ([\d.]+) s")
POLL_S = 0.2


@dataclass
class TeamRun:
    hosts: int
    files: int
    events: int
    intake_s: float
    #: From the start of intake until no job is active.
    processed_s: float
    #: From the start of intake until every file is searchable: the wall the user waits.
    searchable_s: float
    host_cpu_s: float
    #: Files, rows and busy seconds of every loading round the hosts logged.
    loaded_files: int
    loaded_rows: int
    loading_s: float
    samplers: list[RssSampler]


def team_env(home: Path, database_url: str, index_url: str) -> dict[str, str]:
    return {
        "CASESCOPE_HOME": str(home),
        "CASESCOPE_DATABASE_URL": database_url,
        "CASESCOPE_INDEX_URL": index_url,
    }


def start_host(env: dict[str, str], name: str, workers: int) -> tuple[subprocess.Popen, RssSampler]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "casescope", "worker", "--workers", str(workers)],
        env={**os.environ, **env, "CASESCOPE_HOST_NAME": name},
        stdout=subprocess.DEVNULL,
        start_new_session=True,  # a host of its own: its own process group
    )
    sampler = RssSampler(proc.pid)
    sampler.start()
    return proc, sampler


def stop_hosts(pools: list[tuple[subprocess.Popen, RssSampler]]) -> None:
    for proc, _ in pools:
        os.killpg(proc.pid, signal.SIGTERM)
    for proc, sampler in pools:
        proc.wait()
        sampler.stop()


def _db(env: dict[str, str]) -> Database:
    return Database(
        Settings(home=Path(env["CASESCOPE_HOME"]), database_url=env["CASESCOPE_DATABASE_URL"])
    )


def wait_workers(env: dict[str, str], workers: int) -> None:
    """Until `workers` workers have registered (the hosts are up before intake starts)."""
    db = _db(env)
    while len(live_workers(db, stale_after=60)) < workers:
        time.sleep(POLL_S)
    db.dispose()


def wait_searchable(env: dict[str, str], started: float) -> tuple[float, float]:
    """Seconds from `started` until no job is active, and until nothing waits for a load."""
    db = _db(env)
    processed = None
    while True:
        if processed is None and not queue.has_active_jobs(db):
            processed = time.perf_counter() - started
        if processed is not None and not load_waiting(db):
            db.dispose()
            return processed, time.perf_counter() - started
        time.sleep(POLL_S)


def counts(env: dict[str, str]) -> tuple[int, int]:
    """(completed files, parsed events) from the metadata DB."""
    db = _db(env)
    with db.read() as session:
        files, events = session.execute(
            select(func.count(), func.coalesce(func.sum(EvidenceFile.event_count), 0))
        ).one()
    db.dispose()
    return int(files), int(events)


def logged_loads(home: Path) -> tuple[int, int, float]:
    """(files, rows, seconds) of every loading round logged in the home."""
    files = rows = 0
    seconds = 0.0
    for match in LOADED_LINE.finditer((home / "logs" / "casescope.log").read_text()):
        files += int(match[1])
        rows += int(match[2])
        seconds += float(match[3])
    return files, rows, seconds


def run_team(
    evidence: Path, root: Path, url: str, index_url: str, hosts: int, workers: int
) -> TeamRun:
    home = root / f"team-{hosts}"
    env = team_env(home, url, index_url)
    run_casescope(["case", "create", CASE], home, **env)  # the schema, before the hosts
    pools = [start_host(env, f"host-{n}", workers) for n in range(hosts)]
    try:
        wait_workers(env, hosts * workers)
        started = time.perf_counter()
        intake_s, _ = run_casescope(
            ["ingest", "--no-wait", "--case", CASE, str(evidence)], home, **env
        )
        processed_s, searchable_s = wait_searchable(env, started)
    finally:
        stop_hosts(pools)
    files, events = counts(env)
    cpu = sum(sum(s.cpu.values()) for _, s in pools)
    loaded_files, loaded_rows, loading_s = logged_loads(home)
    samplers = [s for _, s in pools]
    return TeamRun(
        hosts, files, events, intake_s, processed_s, searchable_s, cpu,
        loaded_files, loaded_rows, loading_s, samplers,
    )  # fmt: skip


def _claim_loop(url: str, worker: str) -> int:
    db = Database(Settings(home=Path(tempfile.gettempdir()), database_url=url))
    taken = 0
    while groups := queue.claim_group(db, worker, 60.0, CLAIM_GROUP, 1 << 40):
        with db.session() as session:
            taken += len(queue.finish_many(session, [job.id for job in groups], worker))
    db.dispose()
    return taken


def claim_rate(url: str, files: int, procs: int, home: Path) -> float:
    """Files per second that `procs` processes claim and finish in groups of 64 (no work)."""
    db = Database(Settings(home=home, database_url=url))
    with db.session() as session:
        case = Case(name="claims")
        session.add(case)
        session.flush()
        for n in range(files):
            row = EvidenceFile(
                case_id=case.id,
                sha256=f"{n:064x}",
                size_bytes=1,
                file_type=FileType.EVTX,
                original_path=f"/claims/{n}",
                stored_path=f"/claims/{n}",
            )
            session.add(row)
            session.flush()
            queue.enqueue(session, row, Operation.FULL, max_attempts=3)
    db.dispose()
    started = time.perf_counter()
    with ProcessPoolExecutor(procs) as pool:
        taken = sum(pool.map(_claim_loop, [url] * procs, [f"claims-{n}" for n in range(procs)]))
    return taken / (time.perf_counter() - started)


def print_run(run: TeamRun, embedded_wall: float) -> None:
    rate = run.files / run.searchable_s
    loader = run.loaded_files / max(run.loading_s, 1e-3)
    print(
        f"team, {run.hosts} host(s): {run.files:,} files, {run.events:,} events | intake "
        f"{run.intake_s:.1f} s, processed at {run.processed_s:.1f} s, searchable at "
        f"{run.searchable_s:.1f} s ({rate:,.0f} files/s, {run.events / run.searchable_s:,.0f} "
        f"events/s) = {run.searchable_s / embedded_wall:.2f}x embedded | the hosts' loaders: "
        f"{run.loaded_files:,} files in {run.loading_s:.1f} s of loading ({loader:,.0f} "
        f"files/s each while loading)"
    )
    for n, sampler in enumerate(run.samplers):
        print(f" host-{n}: " + sampler.report().replace("\n", "\n  "))


def print_model(run: TeamRun, cores: int, claims_per_s: float) -> None:
    per_file_cpu = run.host_cpu_s / max(run.files, 1)
    events_per_file = run.events / max(run.files, 1)
    loader = run.loaded_files / max(run.loading_s, 1e-3)
    print(
        f"\nmodel: {per_file_cpu * 1000:.1f} ms host CPU per file (workers and loader), "
        f"{events_per_file:.0f} events per file; one host's loader {loader:,.0f} files/s; "
        f"PostgreSQL job claims {claims_per_s:,.0f} files/s; {cores} cores per host"
    )
    one_host = cores / per_file_cpu

    def limits_of(hosts: int) -> dict[str, float]:
        return {
            "the hosts": hosts * one_host,
            "the hosts' loaders": hosts * loader,
            "PostgreSQL claims": claims_per_s,
        }

    first = min(limits_of(1).values())
    for hosts in MODEL_HOSTS:
        limits = limits_of(hosts)
        limit = min(limits, key=limits.__getitem__)
        scaling = limits[limit] / (hosts * first)
        print(
            f"  {hosts:2d} hosts: {limits[limit]:8,.0f} files/s, limited by {limit} "
            f"(scaling {scaling:.2f} of {hosts} times one host)"
        )
    print(
        f"ClickHouse inserts: not modelled; the test double took {run.loaded_rows:,} events "
        f"in this run at up to {run.loaded_rows / max(run.loading_s, 1e-3):,.0f} events/s "
        "per loader (one chDB process behind a Python HTTP server: not a server's rate)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=42, help="copies of the attack samples")
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cores-per-host", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--claim-files", type=int, default=20_000)
    parser.add_argument("--claim-procs", type=int, default=2)
    args = parser.parse_args()
    cluster = PostgresCluster()
    cluster.start()
    try:
        with tempfile.TemporaryDirectory(prefix="cs-team-") as tmp_name:
            root = Path(tmp_name)
            evidence = root / "bulk"
            make_bulk_set(evidence, args.copies)
            embedded, _ = run_casescope(
                ["ingest", "--case", CASE, str(evidence)], root / "embedded"
            )
            print(f"embedded: {embedded:.1f} s for the whole ingest")
            runs = []
            for hosts in args.hosts:
                workers = max(1, (os.cpu_count() or 2) // hosts)
                with clickhouse_double(root / f"chdb-{hosts}") as index_url:
                    runs.append(
                        run_team(evidence, root, cluster.database(), index_url, hosts, workers)
                    )
                print_run(runs[-1], embedded)
            if len(runs) > 1:
                rates = [r.files / r.searchable_s for r in runs]
                print(
                    f"scaling {runs[-1].hosts} hosts / {runs[0].hosts}: {rates[-1] / rates[0]:.2f}"
                )
            claims = claim_rate(cluster.database(), args.claim_files, args.claim_procs, root)
            print_model(runs[0], args.cores_per_host, claims)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()

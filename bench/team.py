"""Benchmark: the bulk set in team configuration, with 1 and 2 worker "hosts", beside the
embedded figure from the same run, and a model of 4, 8 and 16 hosts.

Team configuration here: the metadata DB and job queue on a throwaway PostgreSQL cluster
(tests/postgres.py: Debian's server, fsync off), the event index on the ClickHouse-server
implementation over clickhouse-connect's in-process chDB interface (`chdb:///…`), the home
shared by every "host". A host is a `casescope worker --exit-when-idle` pool with its own
CASESCOPE_HOST_NAME, in its own process group; the hosts of a run share this machine's
cores, so `--workers-per-host` defaults to the cores divided by the hosts (the 2-host run
measures coordination overhead, not more hardware). Phases are timed apart: intake
(`ingest --no-wait`), processing (until every pool exits), and the load into the index
(`casescope status`, which loads every ready file) — in a team the loading runs in `serve`
beside the processing.

The model: a host of C cores processes C / (worker CPU seconds per file) files/s; the
loader takes (events/s of the measured load) / (events per file) files/s; PostgreSQL's
claims are measured apart (`--claim-files` fake jobs claimed in groups of 64 and finished by
`--claim-procs` processes). The modelled throughput of N hosts is the least of N hosts'
processing, the loader and the claims; the line names which one limits it.

Usage: .venv/bin/python bench/team.py [--copies 42] [--hosts 1 2] [--cores-per-host 2]
       [--claim-files 20000] [--claim-procs 2]
Needs the PostgreSQL server binaries (scripts/postgres.sh installs them).
"""

from __future__ import annotations

import argparse
import os
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
from tests.postgres import PostgresCluster

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.enums import FileType, Operation
from casescope.model.tables import Case, EvidenceFile
from casescope.workqueue import queue

CASE = "bench"
MODEL_HOSTS = (1, 2, 4, 8, 16)
CLAIM_GROUP = 64


@dataclass
class TeamRun:
    hosts: int
    files: int
    events: int
    intake_s: float
    processing_s: float
    load_s: float
    #: `status` with nothing to load: start-up and opening the index, not loading
    idle_status_s: float
    worker_cpu_s: float
    samplers: list[RssSampler]

    @property
    def wall(self) -> float:
        return self.intake_s + self.processing_s + self.load_s


def team_env(home: Path, database_url: str) -> dict[str, str]:
    return {
        "CASESCOPE_HOME": str(home),
        "CASESCOPE_DATABASE_URL": database_url,
        "CASESCOPE_INDEX_URL": f"chdb://{home / 'index-server'}",
    }


def start_host(env: dict[str, str], name: str, workers: int) -> tuple[subprocess.Popen, RssSampler]:
    command = [sys.executable, "-m", "casescope", "worker", "--workers", str(workers)]
    proc = subprocess.Popen(
        [*command, "--exit-when-idle"],
        env={**os.environ, **env, "CASESCOPE_HOST_NAME": name},
        stdout=subprocess.DEVNULL,
        start_new_session=True,  # a host of its own: its own process group
    )
    sampler = RssSampler(proc.pid)
    sampler.start()
    return proc, sampler


def counts(env: dict[str, str]) -> tuple[int, int]:
    """(completed files, parsed events) from the metadata DB."""
    db = Database(
        Settings(home=Path(env["CASESCOPE_HOME"]), database_url=env["CASESCOPE_DATABASE_URL"])
    )
    with db.read() as session:
        files, events = session.execute(
            select(func.count(), func.coalesce(func.sum(EvidenceFile.event_count), 0))
        ).one()
    db.dispose()
    return int(files), int(events)


def run_team(evidence: Path, root: Path, url: str, hosts: int, workers: int) -> TeamRun:
    home = root / f"team-{hosts}"
    env = team_env(home, url)
    intake_s, _ = run_casescope(["ingest", "--no-wait", "--case", CASE, str(evidence)], home, **env)
    started = time.perf_counter()
    pools = [start_host(env, f"host-{n}", workers) for n in range(hosts)]
    for proc, sampler in pools:
        if proc.wait() != 0:
            raise SystemExit(f"a worker host exited with {proc.returncode}")
        sampler.stop()
    processing_s = time.perf_counter() - started
    load_s, _ = run_casescope(["status"], home, **env)
    idle_s, _ = run_casescope(["status"], home, **env)  # nothing left to load: its fixed cost
    files, events = counts(env)
    cpu = sum(sum(s.cpu.values()) for _, s in pools)
    samplers = [s for _, s in pools]
    return TeamRun(hosts, files, events, intake_s, processing_s, load_s, idle_s, cpu, samplers)


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
    rate = run.files / run.processing_s
    print(
        f"team, {run.hosts} host(s): {run.files:,} files, {run.events:,} events | intake "
        f"{run.intake_s:.1f} s, processing {run.processing_s:.1f} s ({rate:,.0f} files/s, "
        f"{run.events / run.processing_s:,.0f} events/s), load {run.load_s:.1f} s | total "
        f"{run.wall:.1f} s = {run.wall / embedded_wall:.2f}x embedded"
    )
    for n, sampler in enumerate(run.samplers):
        print(f" host-{n}: " + sampler.report().replace("\n", "\n  "))


def print_model(run: TeamRun, cores: int, claims_per_s: float) -> None:
    per_file_cpu = run.worker_cpu_s / max(run.files, 1)
    events_per_file = run.events / max(run.files, 1)
    loading_s = max(run.load_s - run.idle_status_s, 1e-3)
    loader = (run.events / loading_s) / events_per_file
    print(
        f"\nmodel: {per_file_cpu * 1000:.1f} ms worker CPU per file, {events_per_file:.0f} "
        f"events per file; loader {loader:,.0f} files/s; PostgreSQL claims {claims_per_s:,.0f} "
        f"files/s; {cores} cores per host"
    )
    one_host = cores / per_file_cpu
    for hosts in MODEL_HOSTS:
        limits = {
            "the hosts": hosts * one_host,
            "the loader": loader,
            "PostgreSQL claims": claims_per_s,
        }
        limit = min(limits, key=limits.__getitem__)
        scaling = limits[limit] / (hosts * one_host)
        print(
            f"  {hosts:2d} hosts: {limits[limit]:8,.0f} files/s, limited by {limit} "
            f"(scaling {scaling:.2f} of linear)"
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
                runs.append(run_team(evidence, root, cluster.database(), hosts, workers))
                print_run(runs[-1], embedded)
            if len(runs) > 1:
                rates = [r.files / r.processing_s for r in runs]
                print(
                    f"scaling {runs[-1].hosts} hosts / {runs[0].hosts}: {rates[-1] / rates[0]:.2f}"
                )
            claims = claim_rate(cluster.database(), args.claim_files, args.claim_procs, root)
            print_model(runs[0], args.cores_per_host, claims)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()

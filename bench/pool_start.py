"""Benchmark: what starting worker processes costs a pool, and a small ingest.

Three measurements, each in a fresh home:
- `first file`: the attack samples are queued (not timed), then the pool that `ingest`
  starts (`python -m casescope.jobs.pool_main --exit-when-idle`) starts; prints the seconds
  until the first file is completed and until the pool is done, and the memory of each
  worker when the first file is done: RSS (what the pool's bounds read) and USS (its private
  pages: what it alone costs), and of the template the workers are forked from, if any.
- `recycling`: the same with `CASESCOPE_WORKER_MAX_TASKS=5` (a worker is replaced after every
  few files, about 28 worker starts); the pool's wall time.
- `ingest`: `casescope ingest` of the attack samples, wall time, as the analyst runs it.

With `--baseline SRC`, every run is made a second time right after with another checkout's
`src` first on PYTHONPATH (old and new alternate on the same machine load); prints the median
of `--runs` runs of each.

Usage: .venv/bin/python bench/pool_start.py [--runs 3] [--workers 2] [--baseline SRC]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
# bench/ must not be on sys.path: bench/sigma.py would shadow pySigma's `sigma` namespace package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]
from bench.common import ATTACK_SAMPLES
from sqlalchemy import func, select

from casescope.config import Settings
from casescope.evidence.intake import ingest_paths
from casescope.model.db import Database
from casescope.model.enums import FileStatus
from casescope.model.tables import EvidenceFile, WorkerRecord
from casescope.services.cases import create_case

RECYCLE_TASKS = 10
POLL_SECONDS = 0.01


def _env(home: Path, src: str | None, **extra: str) -> dict[str, str]:
    env = {**os.environ, "CASESCOPE_HOME": str(home), **extra}
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    return env


def _queue_samples(home: Path) -> Database:
    db = Database(Settings(home=home))  # type: ignore[call-arg]
    ingest_paths(db, db.settings, create_case(db, "bench"), [ATTACK_SAMPLES])
    return db


def _completed(db: Database) -> int:
    with db.read() as session:
        where = EvidenceFile.status == FileStatus.COMPLETED
        return session.scalar(select(func.count()).where(where)) or 0


def _memory(pid: int) -> tuple[float, float] | None:
    try:
        memory = psutil.Process(pid).memory_full_info()
    except psutil.Error:
        return None
    return memory.rss / 2**20, memory.uss / 2**20


def _worker_memory(db: Database, pool_pid: int) -> dict[str, float]:
    """Mean RSS and USS of the live workers, and of the template they were forked from (their
    parent, when it is not the pool), MB."""
    with db.read() as session:
        pids = list(session.scalars(select(WorkerRecord.pid)))
    figures = [m for m in map(_memory, pids) if m is not None]
    if not figures:
        return {}
    found = {
        "worker RSS, MB": statistics.mean(rss for rss, _ in figures),
        "worker USS, MB": statistics.mean(uss for _, uss in figures),
    }
    try:
        parent = psutil.Process(pids[0]).ppid()
    except psutil.Error:
        return found
    template = _memory(parent) if parent != pool_pid else None
    if template is not None:
        found["template RSS, MB"], found["template USS, MB"] = template
    return found


def _pool_module(src: str | None) -> list[str]:
    """What `ingest` runs as its pool: `casescope.jobs.pool_main`, or in a checkout that has
    none, `casescope worker`."""
    root = Path(src) if src else ROOT / "src"
    if (root / "casescope" / "jobs" / "pool_main.py").exists():
        return ["casescope.jobs.pool_main"]
    return ["casescope", "worker"]


def run_pool(
    home: Path, src: str | None, workers: int, **extra: str
) -> tuple[float, float, dict[str, float]]:
    """(seconds to the first completed file, seconds until the pool exits, worker memory)."""
    db = _queue_samples(home)
    command = [sys.executable, "-P", "-m", *_pool_module(src), "--workers", str(workers)]
    started = time.perf_counter()
    pool = subprocess.Popen(
        [*command, "--exit-when-idle"],
        cwd=home,
        env=_env(home, src, **extra),
        stdout=subprocess.DEVNULL,
    )
    first, memory = None, {}
    while pool.poll() is None and first is None:
        if _completed(db):
            first = time.perf_counter() - started
            memory = _worker_memory(db, pool.pid)
        time.sleep(POLL_SECONDS)
    if pool.wait() != 0:
        raise SystemExit(f"the pool exited with {pool.returncode}")
    done = time.perf_counter() - started
    db.dispose()
    return first if first is not None else done, done, memory


def run_ingest(home: Path, src: str | None, workers: int) -> float:
    command = [sys.executable, "-m", "casescope", "ingest", "--case", "bench", str(ATTACK_SAMPLES)]
    started = time.perf_counter()
    subprocess.run(
        command,
        env=_env(home, src, CASESCOPE_WORKERS=str(workers)),
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started


def one_round(src: str | None, workers: int) -> dict[str, float]:
    figures = {}
    with tempfile.TemporaryDirectory(prefix="bench-pool-") as tmp:
        first, done, memory = run_pool(Path(tmp) / "a", src, workers)
        figures["first file, s"], figures["pool done, s"] = first, done
        figures.update(memory)
        _, recycled, _ = run_pool(
            Path(tmp) / "b", src, workers, CASESCOPE_WORKER_MAX_TASKS=str(RECYCLE_TASKS)
        )
        figures[f"pool done, recycled every {RECYCLE_TASKS} files, s"] = recycled
        figures["ingest, s"] = run_ingest(Path(tmp) / "c", src, workers)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline", help="another checkout's src directory")
    args = parser.parse_args()
    versions = {"this checkout": None}
    if args.baseline:
        versions["baseline"] = str(Path(args.baseline).resolve())
    results: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in range(args.runs):
        for label, src in versions.items():
            figures = one_round(src, args.workers)
            for name, value in figures.items():
                results[label][name].append(value)
            shown = ", ".join(f"{name} {value:.2f}" for name, value in figures.items())
            print(f"run {run + 1} {label}: {shown}", flush=True)
    for label, figures in results.items():
        print(f"\n{label} ({args.workers} workers, medians of {args.runs} runs)")
        for name, values in figures.items():
            shown = ", ".join(f"{v:.2f}" for v in values)
            print(f"  {name:<40} {statistics.median(values):6.2f}   ({shown})")


if __name__ == "__main__":
    main()

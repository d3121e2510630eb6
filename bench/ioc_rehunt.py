"""Benchmark: hunting IOCs added to a case whose files are already hunted.

Ingests the attack samples (`--copies` times, distinct bytes) into a fresh home with one
in-process worker and ~100 IOCs of every type (bench/ioc.py's set), then adds `k` new IOCs
(k = 1, 10) two ways and prints the median of `--repeat` runs of each:
  index:    `add_iocs(..., index=...)` — only the new IOCs, one query on the event index
            (the owner's way; load of pending segments not counted: it happens anyway);
  segments: `add_iocs(...)` + an `ioc_only` re-hunt — a worker re-reads every segment and
            hunts all enabled IOCs (the way when another process owns the index).
Also prints how long compiling an IOC set takes (what the worker's matcher cache saves).
Usage:
    CASESCOPE_DATA=../shared/data .venv/bin/python bench/ioc_rehunt.py [--copies 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/ must not be on sys.path: bench/sigma.py would shadow pySigma's `sigma` namespace package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]

from bench.common import make_bulk_set
from bench.ioc import _hundred_iocs, ioc
from sqlalchemy import func, select

from casescope.config import Settings
from casescope.evidence.intake import ingest_paths
from casescope.hunt.matcher import compile_iocs
from casescope.jobs.worker import worker_main
from casescope.model.db import Database
from casescope.model.tables import EvidenceFile
from casescope.services.cases import get_or_create_case
from casescope.services.ioc_hits import HitFilter, hit_summary
from casescope.services.iocs import add_iocs
from casescope.store.index import ChdbIndex
from casescope.store.loader import load_pending
from casescope.store.owner import open_index
from casescope.workqueue import queue


def _timed_worker(label: str, settings: Settings, db: Database, files: int) -> None:
    """Run one in-process worker until the queue is empty; print files/s and events/s."""
    started = time.perf_counter()
    _drain(settings, db)
    took = time.perf_counter() - started
    events = _events(db)
    print(f"{label}: {took:.2f} s, {files / took:,.1f} files/s, {events / took:,.0f} events/s")


def _events(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.sum(EvidenceFile.event_count))) or 0)


def _compile_figures() -> None:
    iocs = _hundred_iocs()
    thousands = [ioc(f"185.{n // 250}.{n % 250}.9", "ip", n) for n in range(1000)]
    thousands += [ioc(f"bad{n}.example.org", "domain", 1000 + n) for n in range(1000)]
    for compiled in (iocs, thousands):
        started = time.perf_counter()
        for _ in range(3):
            compile_iocs(compiled)
        took = (time.perf_counter() - started) / 3 * 1000
        print(f"compile {len(compiled):,} IOCs: {took:.1f} ms (saved per file by the cache)")


def _new_values(run: int, k: int) -> list[str]:
    """k IOCs never added before, of common kinds, some of which hit the samples."""
    values = [f"10.{run}.{n}.77" for n in range(k - 1)]
    return [*values, ("powershell", "svchost.exe", "lsass", "cmd.exe", "rundll32")[run % 5]]


def _drain(settings: Settings, db: Database) -> None:
    """Run in-process workers until the queue is empty (one may exit early on its RSS cap)."""
    while True:
        worker_main(settings, "bench", exit_when_idle=True)
        if not queue.has_active_jobs(db):
            return


def _rehunt_ways(
    db: Database, settings: Settings, index: ChdbIndex, case_id: int, repeat: int
) -> None:
    run = 0
    for k in (1, 10):
        timings: dict[str, list[float]] = {"index": [], "segments": []}
        for _ in range(repeat):
            run += 1
            started = time.perf_counter()
            add_iocs(db, settings, case_id, _new_values(run, k), index=index)
            timings["index"].append(time.perf_counter() - started)
            run += 1
            started = time.perf_counter()
            add_iocs(db, settings, case_id, _new_values(run, k))
            _drain(settings, db)
            timings["segments"].append(time.perf_counter() - started)
        for way, took in timings.items():
            print(f"add {k} IOC(s), {way}: median {statistics.median(took):.3f} s ({repeat} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    _compile_figures()
    iocs = _hundred_iocs()
    with tempfile.TemporaryDirectory() as home:
        os.environ["CASESCOPE_HOME"] = home
        # the in-process worker shares this process with chDB: no RSS recycling per file
        os.environ["CASESCOPE_WORKER_MAX_RSS_MB"] = "100000"
        settings = Settings()
        settings.ensure_dirs()
        db = Database(settings)
        case = get_or_create_case(db, "bench")[0]
        for kind in sorted({ioc.type for ioc in iocs}):  # typed: exactly bench/ioc.py's set
            add_iocs(db, settings, case.id, [i.value for i in iocs if i.type == kind], kind)
        samples = make_bulk_set(Path(home) / "evidence", args.copies)
        files = len(ingest_paths(db, settings, case, samples).queued)
        _timed_worker(f"ingest + hunt {len(iocs)} IOCs", settings, db, files)
        print(f"{files} files, {_events(db):,} events")
        with open_index(settings, role="bench") as index:
            started = time.perf_counter()
            load_pending(db, index, settings)
            print(f"load {files} files into the index: {time.perf_counter() - started:.2f} s")
            _rehunt_ways(db, settings, index, case.id, args.repeat)
        hits = sum(s.hits for s in hit_summary(db, HitFilter(case.id)))
        print(f"{hits:,} hits in the end")
        db.dispose()


if __name__ == "__main__":
    main()

"""Benchmark: IOC re-hunt (`ioc_only`) of ingested attack samples, and what caching saves.

Ingests N attack samples into a fresh home with one in-process worker, adds ~100 IOCs of
every type (bench/ioc.py's set) and times the re-hunt, which re-reads segments only.
Also prints how long compiling that IOC set takes: the per-file cost the worker's matcher
cache (one compile per case and IOC set) avoids. Usage:
    CASESCOPE_DATA=../shared/data .venv/bin/python bench/ioc_rehunt.py [--files 100]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from sqlalchemy import func, select

from casescope.config import Settings
from casescope.evidence.intake import ingest_paths
from casescope.hunt import compile_iocs
from casescope.jobs.worker import worker_main
from casescope.model.db import Database
from casescope.model.tables import EvidenceFile
from casescope.services.cases import get_or_create_case
from casescope.services.iocs import HitFilter, add_iocs, hit_summary
from common import ATTACK_SAMPLES
from ioc import _hundred_iocs, ioc


def _timed_worker(label: str, settings: Settings, db: Database, files: int) -> None:
    """Run one in-process worker until the queue is empty; print files/s and events/s."""
    started = time.perf_counter()
    worker_main(settings, "bench", exit_when_idle=True)
    took = time.perf_counter() - started
    events = _events(db)
    print(f"{label}: {took:.2f} s, {files / took:,.1f} files/s, {events / took:,.0f} events/s")


def _events(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.sum(EvidenceFile.event_count))) or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=100)
    args = parser.parse_args()
    iocs = _hundred_iocs()
    thousands = [ioc(f"185.{n // 250}.{n % 250}.9", "ip", n) for n in range(1000)]
    thousands += [ioc(f"bad{n}.example.org", "domain", 1000 + n) for n in range(1000)]
    for compiled in (iocs, thousands):
        started = time.perf_counter()
        for _ in range(3):
            compile_iocs(compiled)
        took = (time.perf_counter() - started) / 3 * 1000
        print(f"compile {len(compiled):,} IOCs: {took:.1f} ms (saved per file by the cache)")

    samples = sorted(ATTACK_SAMPLES.rglob("*.evtx"))[: args.files]
    with tempfile.TemporaryDirectory() as home:
        os.environ["CASESCOPE_HOME"] = home
        settings = Settings()
        settings.ensure_dirs()
        db = Database(settings)
        case = get_or_create_case(db, "bench")[0]
        report = ingest_paths(db, settings, case, samples)
        files = len(report.queued)
        _timed_worker("ingest, no IOCs", settings, db, files)
        for kind in sorted({ioc.type for ioc in iocs}):  # typed: exactly bench/ioc.py's set
            add_iocs(db, settings, case.id, [i.value for i in iocs if i.type == kind], kind)
        _timed_worker(f"re-hunt {len(iocs)} IOCs", settings, db, files)
        hits = sum(s.hits for s in hit_summary(db, HitFilter(case.id)))
        print(f"{files} files, {hits:,} hits")
        db.dispose()


if __name__ == "__main__":
    main()

"""Benchmark: ingest the attack samples, then a ~11,600-file bulk set, into fresh homes.

Prints wall time, files/s, events/s, CPU and peak RSS per process, the share of time per
step, and the timeline of each run (bench/phases.py: case created, intake, pool started,
template ready, first and last step, loads, compaction). `--runs N` repeats the attack
samples' first ingest N times (each in a new home) and prints the medians.
Usage: .venv/bin/python bench/ingest.py [--copies 42] [--skip-bulk] [--large-lines 0]
       [--runs N] [--workers N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
# bench/ must not be on sys.path: bench/sigma.py would shadow pySigma's `sigma` namespace package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]
from bench.common import ATTACK_SAMPLES, make_bulk_set, make_large_ndjson, run_casescope
from bench.phases import timeline

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.tables import AuditRecord, EvidenceFile


def step_shares(home: Path) -> str:
    db = Database(Settings(home=home))
    with db.session() as session:
        rows = session.execute(
            select(AuditRecord.action, func.sum(AuditRecord.duration_ms), func.count())
            .where(AuditRecord.file_id.is_not(None))
            .group_by(AuditRecord.action)
        ).all()
        files, events = session.execute(
            select(func.count(), func.sum(EvidenceFile.event_count))
        ).one()
    total = sum(ms for _, ms, _ in rows) or 1.0
    lines = [
        f"  {action:<15} {ms / 1000:8.2f} s  {100 * ms / total:5.1f}%  "
        f"({ms / max(n, 1):.1f} ms/file)"
        for action, ms, n in sorted(rows)
    ]
    return f"files {files:,}, events {events or 0:,}; worker time per step:\n" + "\n".join(lines)


def bench(label: str, evidence: Path, workers: int | None) -> tuple[float, float]:
    """One fresh-home ingest of `evidence`; returns (wall s, CPU s of all its processes)."""
    with tempfile.TemporaryDirectory(prefix="cs-bench-") as tmp:
        home = Path(tmp) / "home"
        env = {"CASESCOPE_WORKERS": str(workers)} if workers else {}
        started = datetime.now(UTC)
        wall, sampler = run_casescope(["ingest", "--case", "bench", str(evidence)], home, **env)
        db = Database(Settings(home=home))
        with db.session() as session:
            files, events = session.execute(
                select(func.count(), func.coalesce(func.sum(EvidenceFile.event_count), 0))
            ).one()
        print(f"\n== {label}: {files:,} files, {events:,} events")
        print(
            f"wall {wall:.2f} s | {files / wall:,.0f} files/s | {events / wall:,.0f} events/s "
            f"| {1000 * wall / files:.1f} ms/file end to end"
        )
        cpu = sampler.cpu_seconds
        print(
            f"CPU (user+sys, all casescope processes) {cpu:.1f} s "
            f"| {1000 * cpu / files:.1f} ms/file"
        )
        print(sampler.report())
        print(step_shares(home))
        timeline(home, started, wall)
        return wall, cpu


def samples_runs(runs: int, workers: int | None) -> None:
    results = [bench(f"attack samples, run {n + 1}", ATTACK_SAMPLES, workers) for n in range(runs)]
    walls, cpus = zip(*results, strict=True)
    print(
        f"\n== attack samples, first ingest, {runs} runs: wall median "
        f"{statistics.median(walls):.2f} s ({', '.join(f'{w:.2f}' for w in walls)}); "
        f"CPU median {statistics.median(cpus):.2f} s ({', '.join(f'{c:.2f}' for c in cpus)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=42, help="bulk copies of the samples")
    parser.add_argument("--skip-bulk", action="store_true")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--large-lines", type=int, default=1_000_000, help="0 to skip")
    parser.add_argument("--runs", type=int, default=1, help="attack-sample runs (medians)")
    args = parser.parse_args()
    samples_runs(args.runs, args.workers)
    if args.large_lines:
        with tempfile.TemporaryDirectory(prefix="cs-large-") as tmp:
            path = make_large_ndjson(Path(tmp) / "edr.jsonl", args.large_lines)
            bench(f"one large NDJSON file ({path.stat().st_size / 2**20:.0f} MiB)", path, 1)
    if not args.skip_bulk:
        with tempfile.TemporaryDirectory(prefix="cs-bulk-") as tmp:
            make_bulk_set(Path(tmp), args.copies)
            bench(f"bulk set ({args.copies} copies)", Path(tmp), args.workers)


if __name__ == "__main__":
    main()

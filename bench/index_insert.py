"""Benchmark: what one INSERT of the index owner costs, from chDB's own counters.

Builds the group load bundles of the attack samples (`--copies` distinct copies) once: a
fresh home, `casescope ingest --no-wait`, the workers' bundles left unloaded (nothing owns
the index). Then, for each variant in turn (`--runs` rounds), a fresh process opens a fresh
index and loads every bundle `--inserts` times, one `ChdbIndex.load_bundles` (one INSERT)
each, with merges stopped so that only the INSERTs are measured. Prints, per INSERT, the
medians over the rounds of: wall, the process's CPU (user, system), chDB's soft page
faults, the time it spent building skip indexes (the text index), the IO buffers it
allocated (`system.events` before and after), and the process's peak RSS.

A variant is `NAME` or `NAME:TABLE_SETTING` (applied with ALTER TABLE … MODIFY SETTING),
with `--jemalloc NAME=CONF` giving a variant its JE_MALLOC_CONF (read when chDB loads, hence a
process per variant). The baseline is the code as it is.

Usage: .venv/bin/python bench/index_insert.py [--copies 1] [--inserts 10] [--runs 3]
       [--variant wide] [--variant "compact:min_bytes_for_wide_part = 268435456"]
       [--jemalloc "decay100=dirty_decay_ms:100"]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/ must not be on sys.path: bench/sigma.py would shadow pySigma's `sigma` namespace package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]
from bench.common import make_bulk_set, run_casescope

from casescope.store.load_item import LoadItem

#: chDB's counters printed per INSERT (`system.events`).
COUNTERS = {
    "SoftPageFaults": "soft faults",
    "MergeTreeDataWriterSkipIndicesCalculationMicroseconds": "skip index us",
    "IOBufferAllocBytes": "IO buffers B",
}


def build_bundles(work: Path, copies: int) -> Path:
    """A home whose files are processed and their bundles not loaded; returns the home."""
    home = work / "home"
    make_bulk_set(work / "evidence", copies)
    run_casescope(["ingest", "--no-wait", "--case", "bench", str(work / "evidence")], home)
    # the metadata DB only in this process: each round's process stays as lean as an owner
    from casescope.config import Settings
    from casescope.model.db import Database
    from casescope.workqueue.queue import has_active_jobs

    db = Database(Settings(home=home))
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            if not has_active_jobs(db):
                return home
            time.sleep(0.5)
    finally:
        db.dispose()
    raise SystemExit("the workers did not finish within 10 minutes")


def _bundles(home: Path) -> dict[Path, list]:
    with sqlite3.connect(home / "casescope.db") as db:
        rows = db.execute(
            "SELECT f.case_id, f.id, s.path, f.load_bundle FROM evidence_files f "
            "JOIN segments s ON s.id = f.segment_id WHERE f.load_bundle IS NOT NULL"
        ).fetchall()
    bundles: dict[Path, list] = {}
    for case_id, file_id, segment, bundle in rows:
        bundles.setdefault(Path(bundle), []).append(LoadItem(case_id, file_id, Path(segment)))
    return bundles


def child(home: Path, setting: str, inserts: int) -> dict[str, float]:
    """One variant's round in this process: the figures per INSERT."""
    from casescope.store.index import ChdbIndex

    bundles = _bundles(home)
    index = ChdbIndex(Path(tempfile.mkdtemp(prefix="cs-insert-")) / "index", memory_mb=480)
    if setting:
        index.execute(f"ALTER TABLE casescope.events MODIFY SETTING {setting}")
    index.execute("SYSTEM STOP MERGES casescope.events")

    def counters() -> dict[str, int]:
        rows = index.query_rows("SELECT event, value FROM system.events")
        return {row["event"]: int(row["value"]) for row in rows}

    before, usage, started = (
        counters(),
        resource.getrusage(resource.RUSAGE_SELF),
        time.perf_counter(),
    )
    for _ in range(inserts):
        index.load_bundles(bundles)
    wall = time.perf_counter() - started
    after, used = counters(), resource.getrusage(resource.RUSAGE_SELF)
    rows = index.scalar("SELECT count() FROM casescope.events")
    figures = {
        "rows": rows / inserts,
        "wall s": wall / inserts,
        "user s": (used.ru_utime - usage.ru_utime) / inserts,
        "system s": (used.ru_stime - usage.ru_stime) / inserts,
        **{label: (after.get(k, 0) - before.get(k, 0)) / inserts for k, label in COUNTERS.items()},
        "peak RSS MB": used.ru_maxrss / 1024,
    }
    print(json.dumps(figures), flush=True)
    os._exit(0)  # chDB's threads make a normal exit slow


def _variants(args: argparse.Namespace) -> list[tuple[str, str, dict[str, str]]]:
    allocators = dict(item.split("=", 1) for item in args.jemalloc)
    variants = []
    for spec in args.variant or ["as is"]:
        name, _, setting = spec.partition(":")
        variants.append((name, setting.strip(), {}))
    for name, conf in allocators.items():
        variants.append((name, "", {"JE_MALLOC_CONF": conf}))
    return variants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=1, help="copies of the attack samples")
    parser.add_argument("--inserts", type=int, default=10, help="INSERTs per round")
    parser.add_argument("--runs", type=int, default=3, help="rounds of every variant")
    parser.add_argument("--variant", action="append", default=[], help="NAME[:TABLE_SETTING]")
    parser.add_argument("--jemalloc", action="append", default=[], help="NAME=JE_MALLOC_CONF")
    parser.add_argument(
        "--child", nargs=3, metavar=("HOME", "SETTING", "INSERTS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), args.child[1], int(args.child[2]))
        return
    with tempfile.TemporaryDirectory(prefix="cs-insert-bench-") as tmp:
        home = build_bundles(Path(tmp), args.copies)
        variants = _variants(args)
        results: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in variants}
        for _ in range(args.runs):
            for name, setting, env in variants:
                command = [
                    sys.executable,
                    __file__,
                    "--child",
                    str(home),
                    setting,
                    str(args.inserts),
                ]
                out = subprocess.run(
                    command, env={**os.environ, **env}, capture_output=True, text=True, check=True
                ).stdout
                results[name].append(json.loads(out.strip().splitlines()[-1]))
        print(
            f"{args.copies} copies, {args.inserts} INSERTs per round, medians of {args.runs} rounds"
        )
        keys = list(results[variants[0][0]][0])
        print(f"{'per INSERT':<16}" + "".join(f"{name:>16}" for name in results))
        for key in keys:
            cells = "".join(
                f"{statistics.median(r[key] for r in runs):>16,.3f}" for runs in results.values()
            )
            print(f"{key:<16}{cells}")


if __name__ == "__main__":
    main()

"""Benchmark: intake alone (walk, copy, hash, sniff, register), no workers, no index.

Builds the bulk set (`--copies` of the attack samples, distinct bytes; not timed), then takes
it into a case of a fresh home with `ingest_paths`, as `casescope ingest` does before and
while its workers run. Prints wall time and this process's user and system CPU for the
intake. Run it under `strace -c -o calls.txt` with `--evidence` (a set built beforehand, so
that building it is not counted) to count the system calls: a figure the shared machine's
load does not change, where the system time does.

Usage: .venv/bin/python bench/intake.py [--copies 10 | --evidence DIR]
       strace -c -o calls.txt .venv/bin/python bench/intake.py --evidence DIR
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/ must not be on sys.path: bench/sigma.py would shadow pySigma's `sigma` namespace package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]
from bench.common import make_bulk_set

from casescope.config import Settings
from casescope.evidence.intake import ingest_paths
from casescope.model.db import Database
from casescope.services.cases import create_case


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=10, help="copies of the attack samples")
    parser.add_argument("--evidence", type=Path, help="take in this folder instead (untouched)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cs-intake-") as tmp_name:
        tmp = Path(tmp_name)
        evidence = args.evidence or tmp / "bulk"
        if args.evidence is None:
            make_bulk_set(evidence, args.copies)
        files = sum(1 for path in evidence.rglob("*") if path.is_file())
        settings = Settings(home=tmp / "home")
        settings.ensure_dirs()
        db = Database(settings)
        case = create_case(db, "bench")
        before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        report = ingest_paths(db, settings, case, [evidence])
        wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
        db.dispose()
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    print(
        f"{files:,} files, {len(report.queued):,} queued: wall {wall:.2f} s, "
        f"user {user:.2f} s, system {system:.2f} s ({1000 * (user + system) / files:.2f} ms/file)"
    )


if __name__ == "__main__":
    main()

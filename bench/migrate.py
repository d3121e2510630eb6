"""`casescope migrate` of a home built from the sample data: each phase's time, rows/s and
bytes/s, and the verification's time, beside the time the ingest of the same evidence took.

    python bench/migrate.py [--copies 42 | --samples 60] [--rules 300] [--jobs N] [--keep DIR]

The home holds two cases (the bulk set by default: the attack samples copied `--copies`
times, split between them) and `--rules` SigmaHQ process-creation rules; its target is a
fresh embedded home. With `--keep DIR` the source is built in DIR and kept, and a DIR that
holds one already is migrated again without being rebuilt (a fresh target each time). Its
figures are where the rates of `migrate plan` (casescope/migrate/plan.py) come from.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/ must not be on sys.path: bench/sigma.py would shadow pySigma's `sigma` namespace package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]
from bench.common import ATTACK_SAMPLES, DATA, make_bulk_set, sample_paths

from casescope.migrate import runner
from casescope.migrate.events import DEFAULT_JOBS
from casescope.migrate.phases import Phase
from casescope.migrate.plan import plan


def _casescope(home: Path, *args: str) -> None:
    env = {"CASESCOPE_HOME": str(home), "PATH": "/usr/bin:/bin"}
    subprocess.run(
        [sys.executable, "-m", "casescope", *args], env=env, check=True, capture_output=True
    )


def evidence_paths(root: Path, samples: int, copies: int) -> list[str]:
    """The first `samples` attack samples, or with `copies` the bulk set of that many
    copies of every sample (bench/common.py)."""
    if copies:
        return [str(p) for p in make_bulk_set(root / "bulk", copies)]
    return [str(p) for p in sample_paths()[:samples]]


def build_home(home: Path, paths: list[str], rules: int) -> float:
    """Rules imported and the evidence ingested into two cases; the ingest's seconds."""
    folder = home.parent / "rules"
    folder.mkdir(parents=True, exist_ok=True)
    every = sorted((DATA / "sigma" / "rules" / "windows" / "process_creation").glob("*.yml"))
    for rule in every[:rules]:
        (folder / rule.name).write_bytes(rule.read_bytes())
    _casescope(home, "rules", "import", str(folder), "--name", "sigmahq")
    started = time.perf_counter()
    _casescope(home, "ingest", "--case", "one", *paths[::2])
    _casescope(home, "ingest", "--case", "two", *paths[1::2])
    return time.perf_counter() - started


def migrate(source: Path, target: Path, jobs: int) -> None:
    print(f"{'phase':<10}{'seconds':>9}{'rows':>10}{'rows/s':>10}{'MB':>8}{'MB/s':>8}")
    total = 0.0
    with runner.endpoints(source, target, None) as ends:
        plans = {item.phase: item for item in plan(ends.source, list(Phase), list(ends.cases))}
        for phase in Phase:
            started = time.perf_counter()
            runner.run_phase(ends, phase, runner.Progress(), runner.Batches(jobs=jobs))
            seconds = time.perf_counter() - started
            total += seconds
            item = plans[phase]
            mb = item.bytes / 1e6
            print(
                f"{phase.value:<10}{seconds:>9.2f}{item.rows:>10}{item.rows / seconds:>10.0f}"
                f"{mb:>8.1f}{mb / seconds:>8.1f}"
            )
        started = time.perf_counter()
        report = runner.verify(ends)
        verify_s = time.perf_counter() - started
    share = 100 * verify_s / total
    print(
        f"verify: {verify_s:.2f} s ({share:.0f}% of the migration's {total:.2f} s), ok={report.ok}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--copies", type=int, default=42, help="the bulk set of this many copies (default)"
    )
    parser.add_argument(
        "--samples", type=int, default=0, help="instead, the first N attack samples, once"
    )
    parser.add_argument("--rules", type=int, default=300, help="SigmaHQ rules to import")
    parser.add_argument(
        "--jobs", type=int, default=DEFAULT_JOBS, help="threads copying in the events phase"
    )
    parser.add_argument("--keep", type=Path, help="build the source here, keep it, reuse it")
    args = parser.parse_args()
    if not ATTACK_SAMPLES.is_dir():
        sys.exit(f"no sample data at {ATTACK_SAMPLES}")
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-migrate-"))
    if (root / "source" / "casescope.db").is_file():
        print(f"migrating the source kept in {root} (not rebuilt)")
    else:
        copies = 0 if args.samples else args.copies
        paths = evidence_paths(root, args.samples, copies)
        ingest_s = build_home(root / "source", paths, args.rules)
        print(f"ingest of the same evidence: {ingest_s:.2f} s ({len(paths):,} files)")
    shutil.rmtree(root / "target", ignore_errors=True)
    migrate(root / "source", root / "target", args.jobs)


if __name__ == "__main__":
    main()

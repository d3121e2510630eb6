"""Benchmark: peak RSS of the index owner (the `casescope ingest` process that loads segments
into chDB) for (a) the attack samples and (b) one generated 1M-event NDJSON file, then the
speed of a few searches on the 1M-event index.

The owner's peak is its exact `ru_maxrss` (from wait4); workers are sampled every 0.1 s.
Usage: .venv/bin/python bench/index_memory.py [--lines 1000000] [--memory-mb 450]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
# bench/ must not be on sys.path: bench/sigma.py would shadow pySigma's `sigma` namespace package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]
from bench.common import ATTACK_SAMPLES, RssSampler, make_large_ndjson

from casescope.config import Settings
from casescope.store.owner import open_index

SEARCHES = {
    "token (hasToken)": "SELECT count() AS n FROM casescope.events "
    "WHERE hasToken(search_text, 'user42')",
    "substring (LIKE)": "SELECT count() AS n FROM casescope.events "
    "WHERE search_text LIKE '%echo 4242%'",
    "first page by time": "SELECT * EXCEPT search_text FROM casescope.events "
    "WHERE hasToken(search_text, 'ws') ORDER BY ts LIMIT 100",
    "top hosts": "SELECT computer, count() AS n FROM casescope.events "
    "GROUP BY computer ORDER BY n DESC LIMIT 10",
}


def ingest(evidence: Path, home: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """Run `casescope ingest`; returns wall s, the owner's peak RSS MB, the workers' peak MB.

    The owner's peak is wait4's `ru_maxrss`: the largest of the owner and the workers it
    reaped, which is the owner's own unless a worker outgrew it (the sampled peaks say)."""
    environ = {**os.environ, "CASESCOPE_HOME": str(home), **env}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "casescope", "ingest", "--case", "bench", str(evidence)],
        env=environ,
        stdout=subprocess.DEVNULL,
    )
    sampler = RssSampler(proc.pid)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    sampler.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"casescope ingest exited with {proc.returncode}")
    workers = [rss for pid, (_, rss) in sampler.peaks.items() if pid != proc.pid]
    owner = max(usage.ru_maxrss / 1024, sampler.peaks.get(proc.pid, ("", 0.0))[1])
    return time.perf_counter() - started, owner, max(workers, default=0.0)


def time_searches(home: Path, env: dict[str, str]) -> None:
    os.environ.update({"CASESCOPE_HOME": str(home), **env})
    with open_index(Settings(), role="bench") as index:
        for label, sql in SEARCHES.items():
            runs = []
            for _ in range(3):
                started = time.perf_counter()
                index.query_rows(sql)
                runs.append(time.perf_counter() - started)
            print(f"  {label:<20} median {1000 * statistics.median(runs):7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=1_000_000, help="NDJSON events; 0 skips")
    parser.add_argument("--memory-mb", type=int, default=None, help="CASESCOPE_INDEX_MEMORY_MB")
    parser.add_argument("--skip-samples", action="store_true")
    args = parser.parse_args()
    env = {"CASESCOPE_INDEX_MEMORY_MB": str(args.memory_mb)} if args.memory_mb else {}
    with tempfile.TemporaryDirectory(prefix="cs-mem-") as tmp:
        if not args.skip_samples:
            wall, owner, workers = ingest(ATTACK_SAMPLES, Path(tmp) / "samples", env)
            print(f"attack samples: wall {wall:.1f} s | owner peak RSS {owner:.0f} MB", end="")
            print(f" | workers peak {workers:.0f} MB")
        if args.lines:
            path = make_large_ndjson(Path(tmp) / "edr.jsonl", args.lines)
            home = Path(tmp) / "large"
            wall, owner, workers = ingest(path, home, {**env, "CASESCOPE_WORKERS": "1"})
            label = f"{args.lines:,}-event NDJSON"
            print(f"{label}: wall {wall:.1f} s | owner peak RSS {owner:.0f} MB", end="")
            print(f" | worker peak {workers:.0f} MB")
            print("searches on it (this process, 3 runs each):")
            time_searches(home, env)
            print(f"  bench process RSS after searches: {_rss_mb():.0f} MB")


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


if __name__ == "__main__":
    main()

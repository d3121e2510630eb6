"""Benchmark: `casescope export` of a whole case, as an analyst runs it.

Takes a home built by `bench/search.py --home DIR` (5M events of ~1.1 KB; any home works
with `--case`), exports the case in each format to /dev/null in a process of its own,
`--repeat` times, and prints per run the wall time, events/s, the output's size, and the
exporting process's peak RSS (and its private part: chDB's library pages count in RSS)
with its CPU (user+sys) and system time. The process is the index owner: no `serve` runs.

Usage: .venv/bin/python bench/export.py --home DIR [--case bench-search]
       [--format csv --format jsonl] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/ must not be on sys.path: bench/sigma.py would shadow pySigma's `sigma` namespace package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]
from bench.common import RssSampler


def case_events(home: Path, case: str) -> int:
    """Events indexed in the case (`casescope status --format json`)."""
    out = subprocess.run(
        [sys.executable, "-m", "casescope", "status", "--case", case, "--format", "json"],
        env={**os.environ, "CASESCOPE_HOME": str(home)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(json.loads(out)["events_indexed"])


def export_once(home: Path, case: str, fmt: str) -> tuple[float, int, RssSampler]:
    """One export to a pipe that counts its bytes; wall seconds, bytes, the RSS sampler."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "casescope", "export", "--case", case, "--format", fmt],
        env={**os.environ, "CASESCOPE_HOME": str(home)},
        stdout=subprocess.PIPE,
    )
    sampler = RssSampler(proc.pid)
    sampler.start()
    size = 0
    assert proc.stdout is not None
    while chunk := proc.stdout.read(1 << 20):
        size += len(chunk)
    code = proc.wait()
    sampler.stop()
    if code != 0:
        raise SystemExit(f"casescope export --format {fmt} exited with {code}")
    return time.perf_counter() - started, size, sampler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a bench/search.py home")
    parser.add_argument("--case", default="bench-search")
    parser.add_argument("--format", action="append", choices=["csv", "jsonl"], dest="formats")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    events = case_events(args.home, args.case)
    print(f"case {args.case}: {events:,} events")
    for fmt in args.formats or ["csv", "jsonl"]:
        walls = []
        for run in range(1, args.repeat + 1):
            wall, size, sampler = export_once(args.home, args.case, fmt)
            walls.append(wall)
            (pid, (_, rss)), *_ = sorted(sampler.peaks.items(), key=lambda r: -r[1][1])
            print(
                f"{fmt} run {run}: {wall:.1f} s, {events / wall:,.0f} events/s, "
                f"{size / 2**30:.2f} GiB; peak RSS {rss:.0f} MB "
                f"(private {sampler.private_peaks.get(pid, 0.0):.0f}), "
                f"CPU {sampler.cpu.get(pid, 0.0):.1f} s (sys {sampler.sys_cpu.get(pid, 0.0):.1f})"
            )
        if len(walls) > 1:
            print(f"{fmt} median {statistics.median(walls):.1f} s")


if __name__ == "__main__":
    main()

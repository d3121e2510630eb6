"""Benchmark: parser throughput in one process (no DB, no index).

EVTX: the 20 largest attack samples read 5 times, and the `evtx` crate alone on the same
files as the reference. NDJSON: a generated EDR-like export. Prints events/s (median of runs).
Usage: .venv/bin/python bench/parse.py [--ndjson-lines 300000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import evtx

ROOT = Path(__file__).resolve().parents[1]
# bench/ must not be on sys.path: bench/sigma.py would shadow pySigma's `sigma` namespace package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]
from bench.common import ATTACK_SAMPLES, make_large_ndjson

from casescope.model.enums import FileType
from casescope.parse.files import iter_batches
from casescope.parse.report import ParseReport


def rate(run: Callable[[], int], repeats: int = 3) -> tuple[float, int]:
    results = []
    events = 0
    for _ in range(repeats):
        started = time.perf_counter()
        events = run()
        results.append(events / (time.perf_counter() - started))
    return statistics.median(results), events


def parse_all(paths: list[Path], kind: FileType) -> int:
    return sum(b.num_rows for p in paths for b in iter_batches(p, kind, ParseReport()))


def crate_only(paths: list[Path]) -> int:
    return sum(
        1 for p in paths for _ in evtx.PyEvtxParser(str(p), number_of_threads=1).records_json()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ndjson-lines", type=int, default=300_000)
    args = parser.parse_args()
    largest = sorted(ATTACK_SAMPLES.rglob("*.evtx"), key=lambda p: p.stat().st_size)[-20:] * 5
    ours, events = rate(lambda: parse_all(largest, FileType.EVTX))
    crate, _ = rate(lambda: crate_only(largest))
    print(
        f"EVTX   {events:,} events: casescope {ours:,.0f} events/s; evtx crate alone "
        f"{crate:,.0f} events/s (ratio {ours / crate:.2f})"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = make_large_ndjson(Path(tmp) / "edr.jsonl", args.ndjson_lines)
        ours, events = rate(lambda: parse_all([path], FileType.NDJSON))
        print(f"NDJSON {events:,} events: casescope {ours:,.0f} events/s")


if __name__ == "__main__":
    main()

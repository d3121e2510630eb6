"""Benchmark: searches while the index merges a backlog of parts, as `casescope serve` holds
it right after a large upload (its merges run niced and fall behind the load).

Takes the segments of a case built by `bench/search.py --home DIR` (5M events), loads them
into a fresh index in slices of `--slice-rows` events with merges stopped (one part per
slice: 250 parts for 5M events), then, in a fresh process for each mode, starts the merges
and runs the search loop of `serve`'s first pages (four queries, oldest and newest first,
each with its bounded count) for `--seconds`:

- `sorted`: the product (over IN_ORDER_MAX_PARTS parts a page sorts its matches);
- `in-order`: every page reads the parts in time order, as before that limit.

Prints, per mode, searches done and failed (a failure is `serve`'s 503), latency
percentiles of the successful ones (ms), the parts at start and end, and peak RSS.

Usage: .venv/bin/python bench/search_backlog.py --home DIR [--slice-rows 20000]
       [--seconds 90] [--index-memory-mb 480]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
# bench/ must not be on sys.path: bench/sigma.py would shadow pySigma's `sigma` namespace package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]
from bench.common import percentiles

from casescope.errors import IndexMemoryError
from casescope.services import event_search as es
from casescope.services.search import SearchRequest, build_where
from casescope.store import index as index_module
from casescope.store.events_table import DATABASE
from casescope.store.index import ChdbIndex, LoadItem

QUERIES = ("", "powershell", "EventID:4688", "cmd.exe")


def build_backlog(segments: Path, target: Path, slice_rows: int, memory_mb: int) -> None:
    """Every segment piece under `segments`, one part per `slice_rows` events."""
    index = ChdbIndex(target, memory_mb=memory_mb)
    try:
        index.execute(f"SYSTEM STOP MERGES {DATABASE}.events")
        pieces = sorted(segments.rglob("*.parquet"))
        started = time.monotonic()
        for file_id, piece in enumerate(pieces, start=1):
            seq = pq.read_table(piece, columns=["seq"]).column("seq")
            low, high = pc.min(seq).as_py(), pc.max(seq).as_py() + 1
            for start in range(low, high, slice_rows):
                end = min(start + slice_rows, high)
                index.load([LoadItem(1, file_id, piece, start, end)])
        seconds = time.monotonic() - started
        parts = index.active_parts()
        print(f"backlog: {index.count():,} events in {parts} parts ({seconds:.0f} s)")
    finally:
        index.close()


def search_loop(path: Path, seconds: float, memory_mb: int) -> None:
    """Start the merges of the index at `path` and search it until `seconds` have passed."""
    index = ChdbIndex(path, memory_mb=memory_mb)
    parts_at_start = index.active_parts()
    wheres = [build_where(SearchRequest(1, query)) for query in QUERIES]
    done, failed, latencies = 0, 0, []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for where in wheres:
            for descending in (False, True):
                started = time.monotonic()
                try:
                    es.search_page(index, where, es.PageSpec(limit=50, descending=descending))
                except IndexMemoryError:
                    failed += 1
                    continue
                done += 1
                latencies.append((time.monotonic() - started) * 1000)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  searches {done} done, {failed} failed; ms {percentiles(latencies)}")
    print(f"  parts {parts_at_start} -> {index.active_parts()}; peak RSS {peak:.0f} MB")
    index.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="a home of bench/search.py")
    parser.add_argument("--slice-rows", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--index-memory-mb", type=int, default=480)
    parser.add_argument("--run", choices=["sorted", "in-order"], help=argparse.SUPPRESS)
    parser.add_argument("--index", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:  # one mode, in a process of its own (one chDB per process)
        if args.run == "in-order":
            index_module.IN_ORDER_MAX_PARTS = 1 << 30
        search_loop(args.index, args.seconds, args.index_memory_mb)
        return
    work = args.home / "backlog"
    shutil.rmtree(work, ignore_errors=True)
    build_backlog(args.home / "segments", work / "built", args.slice_rows, args.index_memory_mb)
    for mode in ("sorted", "in-order"):
        copy = work / mode
        shutil.copytree(work / "built", copy, symlinks=True)  # the database link is relative
        print(f"{mode}: {args.seconds:.0f} s of searches while the merges run")
        command = [sys.executable, __file__, "--home", str(args.home), "--run", mode]
        command += ["--index", str(copy)]
        options = ["--seconds", str(args.seconds), "--index-memory-mb", str(args.index_memory_mb)]
        subprocess.run([*command, *options], check=True)
        shutil.rmtree(copy)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()

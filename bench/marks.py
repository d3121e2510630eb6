"""Benchmark: marks at the size of the bulk cap (CASESCOPE_BULK_MARK_MAX_EVENTS, 100,000).

Ingests the attack samples into a fresh home (`casescope ingest`), then, in this process:
tags `--events` events in one bulk change (the samples' events and, past them, keys of
events that do not exist, so the set has the cap's size), tags them again (every mark
there), reads the tag back as the query language's lookup does, runs searches whose mark
term carries every key (`tag:x` counted, `NOT tag:x` counted, `tag:x` with a page of rows),
and clears the tag. Prints wall milliseconds of each (median of `--repeat` runs for the
searches). The searches' cost is the set of keys sent to chDB as parameters.

Usage: nice -n 19 .venv/bin/python bench/marks.py [--events 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/ must not be on sys.path: bench/sigma.py would shadow pySigma's `sigma` namespace package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]
from bench.common import ATTACK_SAMPLES, run_casescope

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.users import EventMark
from casescope.services import event_search as es
from casescope.services.bulk_marks import MarkChange, apply_change
from casescope.services.cases import get_case
from casescope.services.mark_search import mark_lookup
from casescope.services.search import SearchRequest
from casescope.store.event_queries import matching_keys
from casescope.store.loader import load_pending
from casescope.store.owner import open_index
from casescope.store.query import Literal, Marked
from casescope.store.query_ast import MarkField

CASE = "bench-marks"


def timed(label: str, run: Callable[[], object], repeat: int = 1) -> object:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - started) * 1000)
    print(f"{label:<48} {statistics.median(times):9.1f} ms", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-marks-"))
    seconds, _ = run_casescope(["ingest", "--case", CASE, str(ATTACK_SAMPLES)], home)
    print(f"ingest of the attack samples: {seconds:.1f} s")
    settings = Settings(home=home)
    db = Database(settings)
    case_id = get_case(db, CASE).id
    with open_index(settings, role="bench marks") as index:
        load_pending(db, index, settings)
        real = sorted(matching_keys(index, es.build_where(SearchRequest(case_id)), 10**9))
        ghosts = [(10**6, seq) for seq in range(max(0, args.events - len(real)))]
        keys = real + ghosts
        print(f"events: {len(real):,} in the index, {len(keys):,} tagged")
        tag = MarkChange(EventMark.TAG, "bench")
        timed("bulk tag (all new)", lambda: apply_change(db, case_id, keys, tag, "bench"))
        timed("bulk tag again (all there)", lambda: apply_change(db, case_id, keys, tag, "bench"))
        lookup = mark_lookup(db, case_id)
        term = Marked(MarkField.TAG, Literal("bench"))
        timed("lookup of tag:bench (the query's key set)", lambda: lookup(term), args.repeat)
        spec = es.PageSpec(limit=50)
        for query in ("tag:bench", "NOT tag:bench", "EventID:4624 AND tag:bench"):
            request = SearchRequest(case_id, query, marks=lookup)
            where = es.build_where(request)
            timed(
                f"count of {query}",
                lambda w=where: es.count_matches(index, w, None),
                args.repeat,
            )
            timed(
                f"page of 50 of {query}",
                lambda w=where: es.search_page(index, w, spec),
                args.repeat,
            )
        untag = MarkChange(EventMark.TAG, "bench", add=False)
        timed("bulk untag", lambda: apply_change(db, case_id, keys, untag, "bench"))


if __name__ == "__main__":
    main()

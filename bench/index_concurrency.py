"""Benchmark: can the threads of `casescope serve` query one chDB index at once?

On a fresh index of `--events` synthetic events (or the index of `--home`), measures:

1. correctness and throughput of `--threads` threads running the web app's queries (search
   pages, exact counts, column and event-field facets: services/event_search.py) on ONE
   chDB session, and on one reader connection each (`ChdbIndex.reader`), against the same
   queries run one after the other;
2. what a query on a connection does to a stream open on it (an export chunk is one), and
   to a stream open on another connection;
3. search latency while an export runs without pause: behind one exclusive lock (the design
   before `store/shared_index.py`) and as readers of a `SharedIndex`;
4. the time of an exact count for queries of many terms (words or wildcards, OR-ed or
   AND-ed), which CASESCOPE_QUERY_MAX_TERMS bounds (store/query_parse.py).

Usage: .venv/bin/python bench/index_concurrency.py [--events 1000000] [--threads 4]
       [--searches 40] [--home DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# bench/ must not be on sys.path: bench/sigma.py would shadow pySigma's `sigma` namespace package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]
from bench.common import percentiles

from casescope.config import Settings
from casescope.services import event_search as es
from casescope.services.search import ExportFormat, SearchRequest, build_where
from casescope.store.events_table import DATABASE, EVENT_COLUMNS
from casescope.store.index import ChdbIndex
from casescope.store.owner import open_index
from casescope.store.query import QueryLimits
from casescope.store.shared_index import SharedIndex

QUERIES = ("", "echo", "cmd.exe AND user7", "EventID:4688", "Image:*x42*", "host1*", "nothing")
Task = Callable[[ChdbIndex], Any]


@dataclass(frozen=True)
class Failed:
    """A query that raised instead of answering."""

    error: str


def fill(index: ChdbIndex, events: int) -> None:
    """`events` synthetic events of case 1 in 50 files, a second apart, in one INSERT."""
    index.execute(
        f"INSERT INTO {DATABASE}.events ({', '.join(EVENT_COLUMNS)}) "
        "SELECT 1, number % 50, number, toDateTime64('2024-01-01 00:00:00', 6, 'UTC') + number, "
        "4600 + number % 100, 'Security', 'Microsoft-Windows-Security-Auditing', "
        "concat('host', toString(number % 300)), number, number % 5, "
        "concat('user', toString(number % 97)), 'S-1-5-21', "
        "map('CommandLine', concat('cmd.exe /c echo ', toString(number)), "
        "'Image', concat('C:\\\\x', toString(number % 1000))), "
        "concat('{\"n\": ', toString(number), '}') "
        f"FROM numbers({events}) SETTINGS max_threads = 1"
    )


def tasks() -> list[Task]:
    """The web app's queries: a first page with its bounded count, an exact count, a column
    facet and an event-field facet, for each query of QUERIES."""
    out: list[Task] = []
    for text in QUERIES:
        where = build_where(SearchRequest(case_id=1, query=text))
        out += [
            lambda ix, w=where: es.search_page(ix, w, es.PageSpec(limit=50)).rows,
            lambda ix, w=where: es.count_matches(ix, w, None),
            lambda ix, w=where: es.top_values(ix, w, "computer").values,
            lambda ix, w=where: es.top_values(ix, w, "Image", sample=None).values,
        ]
    return out


def run_concurrently(
    jobs: list[Task], use: Callable[[], contextlib.AbstractContextManager[ChdbIndex]], threads: int
) -> tuple[float, list[Any]]:
    def one(job: Task) -> Any:
        try:
            with use() as index:
                return job(index)
        except RuntimeError as error:  # chdb.ChdbError
            return Failed(str(error)[:100])

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(one, jobs))
    return time.perf_counter() - started, results


def throughput(owner: ChdbIndex, threads: int) -> None:
    jobs = tasks() * 2
    started = time.perf_counter()
    expected = [job(owner) for job in jobs]
    serial = time.perf_counter() - started
    print(f"1. {len(jobs)} queries one after the other: {serial:.2f} s")
    same = lambda: contextlib.nullcontext(owner)  # noqa: E731 - every thread, one session
    shared = SharedIndex(owner, threads)
    for label, use in (("on one session", same), ("with a reader each", shared.read)):
        seconds, got = run_concurrently(jobs, use, threads)
        failed = [r for r in got if isinstance(r, Failed)]
        wrong = sum(a != b for a, b in zip(got, expected, strict=True)) - len(failed)
        print(
            f"   {threads} threads {label:18s}: {seconds:.2f} s, {wrong} wrong results, "
            f"{len(failed)} failed" + (f" (e.g. {failed[0].error})" if failed else "")
        )
    shared.close()


def stream_check(owner: ChdbIndex, events: int) -> None:
    """Open a stream over every event, query meanwhile, then read the stream to its end."""
    other = owner.reader()
    try:
        for label, querier in (("the same connection", owner), ("another connection", other)):
            stream = owner.stream_batches(f"SELECT seq FROM {DATABASE}.events", {})
            rows = next(stream).num_rows
            count = querier.query_rows(f"SELECT count() AS n FROM {DATABASE}.events")[0]["n"]
            try:
                rows += sum(batch.num_rows for batch in stream)
                outcome = f"stream read {rows:,} of {events:,} rows"
            except RuntimeError as error:  # chdb.ChdbError
                outcome = f"stream broken: {str(error)[:60]}"
            print(f"2. a query on {label} during a stream: count {count:,}; {outcome}")
    finally:
        other.close()


def search_latency(
    use: Callable[[], contextlib.AbstractContextManager[ChdbIndex]], searches: int, export: bool
) -> list[float]:
    """Milliseconds of `searches` first pages, while an export runs without pause or not."""
    stop = threading.Event()

    def exporter() -> None:
        where = build_where(SearchRequest(case_id=1))
        while not stop.is_set():
            for _ in es.export_chunks(use, where, ExportFormat.CSV):
                if stop.is_set():
                    return

    thread = threading.Thread(target=exporter, daemon=True)
    if export:
        thread.start()
        time.sleep(1.0)  # the export is past its first, small chunks
    where = build_where(SearchRequest(case_id=1, query="echo"))
    times = []
    for _ in range(searches):
        started = time.perf_counter()
        with use() as index:
            es.search_page(index, where, es.PageSpec(limit=50))
        times.append((time.perf_counter() - started) * 1000)
    stop.set()
    if export:
        thread.join()
    return times


def latency(owner: ChdbIndex, searches: int) -> None:
    lock = threading.Lock()

    @contextlib.contextmanager
    def exclusive() -> Iterator[ChdbIndex]:
        with lock:
            yield owner

    shared = SharedIndex(owner, 4)
    print("3. first pages of 'echo' (ms):")
    for label, use in (("one exclusive lock", exclusive), ("SharedIndex readers", shared.read)):
        alone = search_latency(use, searches, export=False)
        busy = search_latency(use, searches, export=True)
        print(f"   {label:20s} alone:           {percentiles(alone)}")
        print(f"   {label:20s} beside an export: {percentiles(busy)}")
    shared.close()


def term_costs(owner: ChdbIndex, sizes: tuple[int, ...] = (10, 100, 300, 1000)) -> None:
    rnd = random.Random(1)
    limits = QueryLimits(max_chars=100_000, max_terms=max(sizes))
    print("4. an exact count of a query of N terms (s):")
    for n in sizes:
        words = [
            rnd.choice(("abc", "xyz", "echo", "host")) + str(rnd.randint(0, 99_999))
            for _ in range(n)
        ]
        cells = []
        for label, terms in (("words", words), ("wildcards", [f"*{w}*" for w in words])):
            for op in (" OR ", " "):
                where = build_where(SearchRequest(1, op.join(terms), limits=limits))
                started = time.perf_counter()
                es.count_matches(owner, where, None)
                cells.append(f"{label} {op.strip() or 'AND'} {time.perf_counter() - started:.2f}")
        print(f"   {n:5d} terms: " + ", ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--searches", type=int, default=40)
    parser.add_argument("--home", type=Path, help="use this home's index (case 1) as it is")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.home:
            settings = Settings(home=args.home)
        else:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="concurrency-")))
            settings = Settings(home=home)
        owner = stack.enter_context(open_index(settings, role="bench"))
        if not args.home:
            started = time.perf_counter()
            fill(owner, args.events)
            print(f"{args.events:,} events loaded in {time.perf_counter() - started:.1f} s")
        events = owner.count()
        throughput(owner, args.threads)
        stream_check(owner, events)
        latency(owner, args.searches)
        term_costs(owner)


if __name__ == "__main__":
    main()

"""Benchmark: search latency of `casescope serve` while anonymous clients flood it.

Builds a fresh home with the attack samples ingested (or reuses `--home`), starts a real
`casescope serve` on a free loopback port, and times bench/search.py's queries in `--repeat`
rounds, alternately alone and while `--procs` processes (each `--conns` keep-alive
connections) send anonymous `GET /health`, `GET /metrics` and `POST /api/login` with random
user names as fast as `--rate` requests/s allows (0: as fast as they can). Alternating
rounds keep the machine's other, drifting load out of the comparison. Prints search p50/p95
without and with the flood (target: p95 within 20%), what the flood got (statuses, rate), the
server's CPU in both, and its RSS before, at its peak during, and after the flood.

Loopback only, and bounded: the flood runs only during flooded rounds, and the rounds stop
after `--max-flood-seconds`.

Usage: .venv/bin/python bench/flood.py [--home DIR] [--repeat 6] [--procs 2] [--conns 8]
       [--rate 500] [--metrics-allow CIDRS]
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import multiprocessing
import os
import secrets
import sys
import tempfile
import threading
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from urllib.parse import urlencode

import psutil

ROOT = Path(__file__).resolve().parents[1]
# bench/ must not be on sys.path: bench/sigma.py would shadow pySigma's `sigma` namespace package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]
from bench.common import ATTACK_SAMPLES, RssSampler, p95, percentiles
from bench.search import queries
from bench.search_case import PASSWORD, USER, Api, api_token, casescope, free_port, start_server

CASE = "bench-flood"
HOST = "127.0.0.1"
TARGET_RATIO = 1.2
FLOOD_PATHS = ("/health", "/metrics", "login")


def build_home(home: Path) -> None:
    marker = home / "bench-flood.json"
    if marker.exists():
        print(f"reusing {home}")
        return
    started = time.perf_counter()
    casescope(home, "ingest", "--case", CASE, str(ATTACK_SAMPLES))
    casescope(home, "user", "create", USER, "--admin", "--password", PASSWORD)
    marker.write_text(json.dumps({"ingest_s": round(time.perf_counter() - started, 1)}))
    print(f"ingested the attack samples in {time.perf_counter() - started:.0f} s")


def wait_searchable(api: Api) -> int:
    (case,) = [c for c in api.get("/api/cases") if c["name"] == CASE]
    while not api.get(f"/api/cases/{case['id']}/progress")["searchable"]:
        time.sleep(0.5)
    return case["id"]


def time_plan(api: Api, plan: list[tuple[str, str, dict]], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        for _category, path, params in plan:
            started = time.perf_counter()
            status, data = api.call("GET", f"{path}?{urlencode(params)}" if params else path)
            samples.append((time.perf_counter() - started) * 1000)
            if status != 200:
                raise SystemExit(f"GET {path} {params}: {status} {data[:300]!r}")
    return samples


def flood_request(conn: http.client.HTTPConnection, path: str) -> int:
    """One anonymous request; its status."""
    if path == "login":
        body = json.dumps({"username": secrets.token_hex(6), "password": secrets.token_hex(8)})
        conn.request("POST", "/api/login", body=body, headers={"Content-Type": "application/json"})
    else:
        conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    return response.status


def flood_process(port: int, conns: int, rate: float, go: Event, stop: Event, out: Queue) -> None:
    """One flooding process: `conns` threads, each cycling through the flood's requests on
    keep-alive connections while `go` is set, together at most `rate` requests/s (0: no
    cap), until `stop`."""
    counts: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    interval = conns / rate if rate > 0 else 0.0

    def loop(n: int) -> None:
        local: collections.Counter[str] = collections.Counter()
        connections = {p: http.client.HTTPConnection(HOST, port, timeout=60) for p in FLOOD_PATHS}
        k = n
        while not stop.is_set():
            if not go.wait(0.2):
                continue
            started = time.monotonic()
            path = FLOOD_PATHS[k % len(FLOOD_PATHS)]
            k += 1
            try:
                local[f"{path} {flood_request(connections[path], path)}"] += 1
            except (OSError, http.client.HTTPException):
                local[f"{path} error"] += 1
                connections[path] = http.client.HTTPConnection(HOST, port, timeout=60)
            if interval:
                time.sleep(max(0.0, interval - (time.monotonic() - started)))
        with lock:
            counts.update(local)

    threads = [threading.Thread(target=loop, args=(n,)) for n in range(conns)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put(dict(counts))


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def rss_mb(proc: psutil.Process) -> float:
    return proc.memory_info().rss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, help="casescope home to build in or reuse")
    parser.add_argument("--repeat", type=int, default=6, help="rounds of each kind")
    parser.add_argument("--procs", type=int, default=2, help="flooding processes")
    parser.add_argument("--conns", type=int, default=8, help="connections per process")
    parser.add_argument("--rate", type=float, default=500, help="flood requests/s in all")
    parser.add_argument("--max-flood-seconds", type=float, default=600)
    parser.add_argument("--metrics-allow", help="CASESCOPE_METRICS_ALLOW for serve")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="casescope-bench-flood-"))
    home.mkdir(parents=True, exist_ok=True)
    print(f"home {home}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    build_home(home)
    port = free_port()
    allow = {} if args.metrics_allow is None else {"CASESCOPE_METRICS_ALLOW": args.metrics_allow}
    server = start_server(home, port, allow)
    try:
        run(args, port, server)
    finally:
        server.terminate()
        server.wait(60)


def run(args: argparse.Namespace, port: int, server: psutil.Popen) -> None:
    """Rounds of the plan, alternately alone and flooded (the machine's other load drifts)."""
    api = Api(port, api_token(port))
    case_id = wait_searchable(api)
    plan = list(queries(api, case_id))
    time_plan(api, plan, 1)  # warm-up
    ctx = multiprocessing.get_context("spawn")
    go, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    rate = args.rate / args.procs if args.rate else 0.0
    procs = [
        ctx.Process(target=flood_process, args=(port, args.conns, rate, go, stop, out))
        for _ in range(args.procs)
    ]
    for proc in procs:
        proc.start()
    rss_before = rss_mb(server)
    sampler = RssSampler(server.pid)
    sampler.start()
    quiet: list[float] = []
    flooded: list[float] = []
    cpu = {"quiet": 0.0, "flooded": 0.0}
    wall = {"quiet": 0.0, "flooded": 0.0}
    deadline = time.monotonic() + args.max_flood_seconds
    for _ in range(args.repeat):
        for name, samples in (("quiet", quiet), ("flooded", flooded)):
            if name == "flooded":
                go.set()
                time.sleep(1)  # up to speed before the timing starts
            used, started = cpu_seconds(server), time.perf_counter()
            samples += time_plan(api, plan, 1)
            cpu[name] += cpu_seconds(server) - used
            wall[name] += time.perf_counter() - started
            go.clear()
        if time.monotonic() > deadline:
            break
    stop.set()
    counts: collections.Counter[str] = collections.Counter()
    for _ in procs:
        counts.update(out.get(timeout=120))
    for proc in procs:
        proc.join(60)
    sampler.stop()
    report(args, plan, quiet, flooded, counts, wall["flooded"] + args.repeat)
    print(
        f"serve CPU: {cpu['quiet'] / wall['quiet']:.2f} cores while searching alone, "
        f"{cpu['flooded'] / wall['flooded']:.2f} flooded"
    )
    peak = sampler.peaks.get(server.pid, ("", 0.0))[1]
    print(
        f"serve RSS: {rss_before:.0f} MB before the flood, peak {peak:.0f} MB during, "
        f"{rss_mb(server):.0f} MB after"
    )


def report(
    args: argparse.Namespace,
    plan: list,
    quiet: list[float],
    flooded: list[float],
    counts: collections.Counter[str],
    seconds: float,
) -> None:
    total = sum(counts.values())
    print(
        f"\n{len(plan)} queries x {args.repeat} rounds, alternately alone and flooded; "
        "search latency through the API, ms"
    )
    print(f"  without flood  {percentiles(quiet)}")
    print(f"  with flood     {percentiles(flooded)}")
    ratio = p95(flooded) / p95(quiet)
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    print(f"p95 with / without flood: {ratio:.2f} ({verdict} the target of {TARGET_RATIO:.1f})")
    print(
        f"flood: {total:,} requests in {seconds:.0f} s ({total / seconds:,.0f}/s) from "
        f"{args.procs} processes x {args.conns} connections (rate cap {args.rate or 'none'})"
    )
    for key, n in sorted(counts.items()):
        print(f"  {key:16s} {n:8,}")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

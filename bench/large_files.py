"""Benchmark: one large EVTX file and one large NDJSON file, each through `casescope ingest`.

Issue 4: memory is bounded by configuration, not by input. Generates (in a temporary folder,
or `--dir`) a 1 GiB EVTX file of the attack samples' well-filled chunks, repeated
(`common.make_large_evtx`), and a 2 GiB NDJSON file of EVTX-shaped JSON lines (the samples'
events, ~1.1 KB each, copy k shifted k hours: `search.write_copies`; `make_large_ndjson`'s
~330-byte lines are not typical), ingests each into a fresh CASESCOPE_HOME (no Sigma rules
unless `--rules`, no IOCs) and prints per file: size, events, wall time, events/s end to
end, the peak RSS of every worker, of the pool supervisor and of the `ingest` process (the
index owner, with its private part), against CASESCOPE_WORKER_MAX_RSS_MB,
CASESCOPE_WORKER_HARD_RSS_MB and the 500 MB goal, and the log's lines about recycled or
killed workers and memory limits. RSS is sampled every 0.1 s. Needs ~3x the files' size on
disk; run it under `nice -n 19` on a shared machine.

Usage: .venv/bin/python bench/large_files.py [--evtx-gib 1] [--ndjson-gib 2] [--dir DIR]
       [--keep] [--rules DIR]   (0 GiB skips a file; files already in DIR are re-used;
       --keep leaves the files and the homes; settings come from CASESCOPE_* variables)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
# bench/ must not be on sys.path: bench/sigma.py would shadow pySigma's `sigma` namespace package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]
from bench.common import RssSampler, make_large_evtx, run_casescope
from bench.ingest import step_shares
from bench.search_case import sample_templates, write_copies

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.tables import Detection, EvidenceFile, Job

GIB = 2**30
GOAL_MB = 500.0
LOG_MARKS = ("recycles", "killing worker", "exceeded", "memory limit", " ERROR ")


def make_evtx(folder: Path, gib: float) -> Path:
    path = folder / f"large-{gib:g}gib.evtx"
    if not path.exists():
        records = make_large_evtx(path, int(gib * GIB))
        print(f"generated {path.name}: {records:,} records")
    return path


def make_ndjson(folder: Path, gib: float) -> Path:
    path = folder / f"large-{gib:g}gib.ndjson"
    if not path.exists():
        templates = sample_templates()
        line = sum(len(head) + len(tail) + 28 for head, tail, _ in templates) / len(templates)
        written, [made] = write_copies(folder / "ndjson-tmp", int(gib * GIB / line), 1)
        made.replace(path)
        (folder / "ndjson-tmp").rmdir()
        print(f"generated {path.name}: {written:,} events, {line:.0f} bytes each on average")
    return path


def role_of(pid: int, command: str, owner_pid: int) -> str:
    """What a sampled process is, from its command line (`RssSampler` keeps its start)."""
    if pid == owner_pid:
        return "ingest (index owner)"
    if "casescope worker" in command:
        return "pool supervisor"
    if "spawn_main" in command:
        return "worker"
    if "resource_tracker" in command:
        return "resource tracker"
    return command or "other"


def verdict(role: str, rss: float, settings: Settings) -> str:
    if role == "worker" and rss > settings.worker_hard_rss_mb:
        return f"OVER the hard limit ({settings.worker_hard_rss_mb} MB): killed"
    if role == "worker" and rss > settings.worker_max_rss_mb:
        return f"over the recycle limit ({settings.worker_max_rss_mb} MB): recycled after"
    return "over the 500 MB goal" if rss > GOAL_MB else "ok"


def print_memory(sampler: RssSampler, settings: Settings) -> None:
    print(
        f"limits: worker recycled between files above {settings.worker_max_rss_mb} MB, "
        f"killed above {settings.worker_hard_rss_mb} MB; goal < {GOAL_MB:.0f} MB per process"
    )
    rows = sorted(sampler.peaks.items(), key=lambda item: -item[1][1])
    for pid, (command, rss) in rows:
        role = role_of(pid, command, sampler.root_pid)
        private = sampler.private_peaks.get(pid, 0.0)
        print(
            f"  {role:<22} pid {pid:<8} peak RSS {rss:7.1f} MB (private {private:6.1f})  "
            f"CPU {sampler.cpu.get(pid, 0.0):6.1f} s (sys {sampler.sys_cpu.get(pid, 0.0):4.1f})  "
            f"{verdict(role, rss, settings)}"
        )


def print_file(home: Path) -> int:
    """The file's outcome from the metadata DB; returns its event count."""
    db = Database(Settings(home=home))
    try:
        with db.session() as session:
            row = session.scalars(select(EvidenceFile)).one()
            detections = session.scalar(select(func.count()).select_from(Detection))
            print(
                f"status {row.status.value}, index {row.index_state.value}, "
                f"{row.event_count:,} events (estimated {row.events_estimated:,}), "
                f"{detections:,} detections" + (f", error: {row.error}" if row.error else "")
            )
            count = row.event_count
        print(step_shares(home))
    finally:
        db.dispose()
    return count


def print_log(home: Path) -> None:
    log = home / "logs" / "casescope.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    marked = [line for line in lines if any(mark in line for mark in LOG_MARKS)]
    print(f"log: {len(marked)} lines about recycled or killed workers, memory limits, errors")
    for line in marked[:10]:
        print(f"  {line[:200]}")


def bench(label: str, evidence: Path, home: Path, rules: Path | None) -> None:
    size = evidence.stat().st_size
    print(f"\n== {label}: {evidence.name}, {size / GIB:.2f} GiB ({size:,} bytes)", flush=True)
    if rules:
        wall, _ = run_casescope(["rules", "import", str(rules), "--name", "bench"], home)
        print(f"Sigma rules from {rules} imported in {wall:.1f} s")
    load = os.getloadavg()
    wall, sampler = run_casescope(["ingest", "--case", "bench", str(evidence)], home, check=False)
    if sampler.exit_code:
        print(f"casescope ingest exited with {sampler.exit_code}")
    events = print_file(home)
    print(
        f"wall {wall:.1f} s | {events / wall:,.0f} events/s end to end | "
        f"CPU of all processes {sampler.cpu_seconds:.1f} s | load average before "
        f"{load[0]:.2f}, after {os.getloadavg()[0]:.2f}"
    )
    compaction = last_compaction(home)
    if compaction is not None:
        logged_at, compacting = compaction
        searchable = wall - compacting
        print(
            f"  of which compacting the index after the load {compacting:.1f} s: every event "
            f"searchable after {searchable:.1f} s ({events / searchable:,.0f} events/s)"
        )
        claimed = first_claim(home)
        if claimed is not None:
            indexing = (logged_at - timedelta(seconds=compacting) - claimed).total_seconds()
            print(
                f"  parse + index (from the worker's claim of the file until every event is "
                f"searchable): {indexing:.1f} s ({events / indexing:,.0f} events/s)"
            )
    print_memory(sampler, Settings(home=home))
    print_log(home)


def last_compaction(home: Path) -> tuple[datetime, float] | None:
    """When `ingest` logged its compaction after the last load, and how long it took."""
    log = home / "logs" / "casescope.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    found = [
        (line, match)
        for line in lines
        if (match := re.search(r"compacted the index: .* in ([0-9.]+) s", line))
    ]
    if not found:
        return None
    line, match = found[-1]
    logged_at = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").astimezone()  # local
    return logged_at, float(match.group(1))


def first_claim(home: Path) -> datetime | None:
    """When a worker first claimed a job (the start of the parse)."""
    db = Database(Settings(home=home))
    try:
        with db.session() as session:
            started = session.scalar(select(func.min(Job.started_at)))
    finally:
        db.dispose()
    return started.replace(tzinfo=UTC) if started is not None and not started.tzinfo else started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--evtx-gib", type=float, default=1.0, help="EVTX file size; 0 skips")
    parser.add_argument("--ndjson-gib", type=float, default=2.0, help="NDJSON size; 0 skips")
    parser.add_argument("--dir", type=Path, help="for files (re-used) and homes; default /tmp")
    parser.add_argument("--keep", action="store_true", help="leave the files and homes")
    parser.add_argument("--rules", type=Path, help="Sigma rules to import first (folder/zip)")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="cs-large-"))
    folder.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    try:
        for label, gib, make in (
            ("EVTX", args.evtx_gib, make_evtx),
            ("NDJSON", args.ndjson_gib, make_ndjson),
        ):
            if gib:
                home = folder / f"home-{label.lower()}"
                shutil.rmtree(home, ignore_errors=True)  # a fresh home every run
                made += [make(folder, gib), home]
                bench(label, made[-2], home, args.rules)
    finally:
        if args.keep:
            print(f"\nkept in {folder}: {', '.join(p.name for p in made)}")
        elif args.dir:
            for path in made:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

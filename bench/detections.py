"""Benchmark: the detection views on a case with many hits.

Builds a case (or reuses it with `--home`): SigmaHQ's process-creation and Security rules
imported, every attack sample ingested, then the case's detections copied `--copies` times
in the DB (the same events hit again, so every copy has an event in the index for its
summary). Times, `--repeat` times each, in this process (the index opened here): the rules
with their hits/hosts/first and last seen (what the by-rule table and the matrix read), the
same with a level and host filter, the first timeline page, a page in the middle, and one
rule's page. Then streams the whole timeline with `casescope detections --timeline --format
jsonl` and prints its wall time and peak RSS (its memory must not grow with the hits).

Usage: .venv/bin/python bench/detections.py [--home DIR] [--copies 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parents[1]
# bench/ must not be on sys.path: bench/sigma.py would shadow pySigma's `sigma` namespace package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]
from bench.common import ATTACK_SAMPLES, DATA, percentiles, run_casescope

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.tables import Detection
from casescope.services.cases import get_case
from casescope.services.detection_timeline import TimelineCursor, timeline_page
from casescope.services.detections import DetectionFilter, case_hosts, rule_hits
from casescope.store.owner import open_index

CASE = "bench-detections"
MARKER = "bench-detections.txt"


def build(home: Path, copies: int) -> None:
    rules = home.parent / "bench-rules"
    shutil.rmtree(rules, ignore_errors=True)
    windows = DATA / "sigma" / "rules" / "windows"
    shutil.copytree(windows / "process_creation", rules / "process_creation")
    shutil.copytree(windows / "builtin" / "security", rules / "security")
    run_casescope(["rules", "import", str(rules), "--name", "sigmahq"], home)
    run_casescope(["ingest", "--case", CASE, str(ATTACK_SAMPLES)], home)
    db = Database(Settings(home=home))
    columns = ("case_id", "file_id", "seq", "record_id", "ts", "rule_id", "fields", "computer")
    with db.session() as session:
        rows = [
            dict(zip(columns, r, strict=True))
            for r in session.execute(select(*(getattr(Detection, c) for c in columns)))
        ]
        for _ in range(copies - 1):
            session.execute(insert(Detection), rows)
    (home / MARKER).write_text(str(copies))
    db.dispose()


def timed(label: str, repeat: int, call: Callable[[], object]) -> None:
    took = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        took.append((time.perf_counter() - started) * 1000)
    print(f"{label:<44} {percentiles(took)} ms")


def measure(home: Path, repeat: int) -> None:
    settings = Settings(home=home)
    db = Database(settings)
    case_id = get_case(db, CASE).id
    with db.read() as session:
        total = session.scalar(select(func.count()).select_from(Detection))
        middle = session.execute(
            select(Detection.ts, Detection.id)
            .where(Detection.case_id == case_id)
            .order_by(Detection.ts, Detection.id)
            .offset(total // 2)
            .limit(1)
        ).one()
    print(f"{total:,} detections in case {CASE!r}")
    everything = DetectionFilter(case_id)
    host = case_hosts(db, case_id)[0][0]
    narrow = DetectionFilter(case_id, "high", host=host)
    one_rule = rule_hits(db, everything)[0].rule.id
    with open_index(settings, role="bench detections") as index:

        def use():  # type: ignore[no-untyped-def]
            return nullcontext(index)

        timed("rules with hits (by rule, matrix)", repeat, lambda: rule_hits(db, everything))
        timed("rules, level high on the busiest host", repeat, lambda: rule_hits(db, narrow))
        timed("timeline, first page of 100", repeat, lambda: timeline_page(db, use, everything))
        cursor = TimelineCursor(middle.ts, middle.id)
        timed(
            "timeline, a page of 100 in the middle",
            repeat,
            lambda: timeline_page(db, use, everything, cursor, 100),
        )
        rule = DetectionFilter(case_id, rule_id=one_rule)
        timed("one rule's first page of 100", repeat, lambda: timeline_page(db, use, rule))
    db.dispose()
    seconds, sampler = run_casescope(
        ["detections", "--case", CASE, "--timeline", "--format", "jsonl"], home
    )
    rate = total / seconds
    print(f"casescope detections --timeline --format jsonl: {seconds:.1f} s, {rate:,.0f} hits/s")
    print(sampler.report())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path)
    parser.add_argument("--copies", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="casescope-bench-detections-")) / "home"
    if not (home / MARKER).exists():
        build(home, args.copies)
    measure(home, args.repeat)


if __name__ == "__main__":
    main()

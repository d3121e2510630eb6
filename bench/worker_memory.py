"""Benchmark: what grows in a worker's memory while it reads one large EVTX file with Sigma.

Issue 27: the worker of `bench/large_files.py --rules` peaked at 633 MB on 1 GiB. This runs
a worker's reading part in one process, without the pool or the index, to see which part
grows with the file: the parse (`iter_batches`), the Sigma analyzer fed every batch (the
snapshot compiled from `--rules`, cached under `--dir`), then `persist` of its detections
into a fresh home's metadata database (SQLite). It prints RSS (current and peak) every `--every`
batches and after each phase, with the detections held, wall and CPU time so far.

Usage: .venv/bin/python bench/worker_memory.py FILE.evtx [--rules ../shared/data/sigma]
       [--dir /tmp/cs-worker-memory] [--every 20]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]

from casescope.allocators import use_system_arrow_pool
from casescope.collector import tune_collector
from casescope.config import Settings
from casescope.detect.active import ActiveRules
from casescope.detect.cache import load_or_compile
from casescope.jobs.analyzers import SigmaAnalyzer
from casescope.jobs.registry import rss_mb
from casescope.model.db import Database
from casescope.model.enums import FileType
from casescope.model.tables import Case, EvidenceFile, Rule
from casescope.parse.files import iter_batches
from casescope.parse.report import ParseReport


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def line(label: str, held: int, started: float) -> None:
    print(
        f"{label:<28} RSS {rss_mb():7.1f} MB  peak {peak_mb():7.1f} MB  "
        f"detections held {held:>8,}  {time.perf_counter() - started:6.1f} s "
        f"(CPU {time.process_time():6.1f} s)",
        flush=True,
    )


def a_file_row(db: Database, path: Path, rules: dict[str, int]) -> int:
    """The file's row, and a `rules` row for each compiled rule (its detections name it)."""
    with db.session() as session:
        session.execute(
            insert(Rule),
            [
                {"id": n, "rule_uid": uid, "source": "bench", "path": uid, "sha256": ""}
                for uid, n in rules.items()
            ],
        )
        case = Case(name="bench")
        session.add(case)
        session.flush()
        row = EvidenceFile(
            case_id=case.id,
            original_path=str(path),
            stored_path=str(path),
            sha256="0" * 64,
            size_bytes=path.stat().st_size,
            file_type=FileType.EVTX,
        )
        session.add(row)
        session.flush()
        return row.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument("--rules", type=Path, default=ROOT.parent / "shared/data/sigma")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/cs-worker-memory"))
    parser.add_argument("--every", type=int, default=20)
    args = parser.parse_args()
    tune_collector()
    use_system_arrow_pool()
    started = time.perf_counter()
    line("start", 0, started)
    ruleset = load_or_compile(args.rules, args.dir / "rule-cache")
    active = ActiveRules("bench", ruleset, {r.id: n for n, r in enumerate(ruleset.rules, 1)})
    settings = Settings(home=args.dir / "home")
    analyzer = SigmaAnalyzer(active, batch_events=settings.sigma_batch_events)
    line(f"rules loaded ({len(ruleset.rules):,})", 0, started)
    report = ParseReport()
    batches = iter_batches(args.file, FileType.EVTX, report, batch_size=settings.batch_size)
    events = 0
    for n, batch in enumerate(batches, 1):
        analyzer.consume(batch)
        events += batch.num_rows
        if n % args.every == 0:
            line(f"{events:,} events", len(analyzer._rows), started)
    analyzer.finish()
    line(f"parsed {events:,} events", len(analyzer._rows), started)
    db = Database(settings)
    file_id = a_file_row(db, args.file, active.row_ids)
    with db.session() as session:
        written = analyzer.persist(session, file_id)
    line(f"persisted {written:,}", len(analyzer._rows), started)
    db.dispose()


if __name__ == "__main__":
    main()

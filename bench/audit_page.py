"""Benchmark: one page of the audit log (`services/audit_log.audit_page`) on a big log.

Fills a fresh metadata DB with `--rows` audit rows shaped like a large ingest's (four pipeline
steps per file, an intake row per 200 files, people's actions and logins now and then, over
`--cases` cases), then times the audit page as the web page asks for it: the default view
(people's actions, newest first, with the counts of every tab), the steps tab, a user filter,
a case filter, a time range, and a deep page. Prints the median of `--repeat` runs of each.
Setup is not timed.

Usage: .venv/bin/python bench/audit_page.py [--rows 400000] [--cases 4] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]

from sqlalchemy import insert

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.enums import AuditAction
from casescope.model.tables import AuditRecord
from casescope.services.audit_log import AuditQuery, AuditView, audit_page

STEPS = (
    AuditAction.STEP_ESTIMATING,
    AuditAction.STEP_INDEXING,
    AuditAction.STEP_SIGMA,
    AuditAction.STEP_IOC,
)
START = datetime(2026, 1, 1, tzinfo=UTC)


def _row(n: int, cases: int) -> dict:
    """Row `n`: mostly steps; every 200th an intake batch, every 97th a person's action."""
    if n % 97 == 0:
        action, actor = AuditAction.EVENT_TAG, f"web:analyst{n % 5}"
    elif n % 200 == 0:
        action, actor = AuditAction.INTAKE_REGISTERED, "system"
    else:
        action, actor = STEPS[n % 4], f"worker:{n % 8}"
    return {
        "at": START + timedelta(seconds=n),
        "actor": actor,
        "action": action,
        "case_id": n % cases + 1,
        "file_id": n // 4,
        "ok": True,
        "duration_ms": 1.0,
        "events": 10,
        "detail": f"{n // 4}:{n % 4} label=lateral-movement" if n % 97 == 0 else "",
    }


def fill(db: Database, rows: int, cases: int) -> None:
    batch = 20_000
    for first in range(0, rows, batch):
        with db.session() as session:
            last = min(rows, first + batch)
            session.execute(insert(AuditRecord), [_row(n, cases) for n in range(first, last)])


def timed(db: Database, query: AuditQuery, repeat: int) -> tuple[float, int]:
    times, total = [], 0
    for _ in range(repeat):
        began = time.perf_counter()
        total = audit_page(db, query).total
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ.setdefault("CASESCOPE_SECRET_KEY", "x" * 48)
        db = Database(Settings(home=Path(home)))
        fill(db, args.rows, args.cases)
        middle = START + timedelta(seconds=args.rows // 2)
        queries = {
            "people's actions (default)": AuditQuery(),
            "pipeline steps": AuditQuery(view=AuditView.STEPS),
            "all, user analyst1": AuditQuery(view=AuditView.ALL, actor="analyst1"),
            "all, case 2": AuditQuery(view=AuditView.ALL, case_id=2),
            "all, one hour": AuditQuery(
                view=AuditView.ALL, since=middle, until=middle + timedelta(hours=1)
            ),
            "steps, page 1000": AuditQuery(view=AuditView.STEPS, page=1000),
        }
        print(f"audit rows: {args.rows:,} over {args.cases} cases; median of {args.repeat} runs")
        for name, query in queries.items():
            ms, total = timed(db, query, args.repeat)
            print(f"  {name:<28} {ms:8.1f} ms  ({total:,} rows match)")
        db.dispose()


if __name__ == "__main__":
    main()

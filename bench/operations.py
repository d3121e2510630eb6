"""Cost of the operations layer on a large operation: progress reads (what each SSE client
polls every second), pause, resume, cancel — on SQLite, with synthetic file and job rows.

    python bench/operations.py [--files 11634] [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.enums import FileStatus, FileType, Operation, OperationKind
from casescope.model.tables import Case, EvidenceFile
from casescope.services import operations as ops
from casescope.workqueue import queue


def _setup(db: Database, files: int) -> int:
    with db.session() as session:
        case = Case(name="bench")
        session.add(case)
        session.flush()
        rows = [
            EvidenceFile(
                case_id=case.id,
                sha256=f"{n:064x}",
                size_bytes=1,
                file_type=FileType.EVTX,
                original_path=f"/bench/{n}",
                stored_path=f"/bench/{n}",
                status=FileStatus.COMPLETED,
                event_count=30,
            )
            for n in range(files)
        ]
        session.add_all(rows)
        case_id = case.id
    operation_id = ops.create_operation(db, case_id, OperationKind.REINDEX, "bench")
    with db.session() as session:
        for row in session.query(EvidenceFile).all():
            queue.enqueue_in_operation(
                session, row, Operation.REINDEX, operation_id, max_attempts=3
            )
    ops.seal_operation(db, operation_id)
    return operation_id


def _median_ms(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=11_634)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["CASESCOPE_HOME"] = home
        db = Database(Settings(home=Path(home)))
        start = time.perf_counter()
        operation_id = _setup(db, args.files)
        print(f"queued {args.files:,} jobs in one operation: {time.perf_counter() - start:.2f} s")
        for _ in range(args.files // 3):  # a third done, one running
            job = queue.claim(db, "bench", 60)
            with db.session() as session:
                queue.finish(session, job.id, "bench")
        queue.claim(db, "bench", 60)
        ms = _median_ms(lambda: ops.get_progress(db, operation_id), args.repeat)
        print(f"progress read (one SSE poll): median {ms:.1f} ms")
        for name, fn in (("pause", ops.pause), ("resume", ops.resume)):
            start = time.perf_counter()
            changed = fn(db, operation_id, "bench")
            print(f"{name}: {changed:,} jobs in {(time.perf_counter() - start) * 1000:.0f} ms")
        start = time.perf_counter()
        cancelled = ops.cancel(db, operation_id, "bench")
        print(f"cancel: {cancelled:,} files in {(time.perf_counter() - start) * 1000:.0f} ms")
        db.dispose()


if __name__ == "__main__":
    main()

"""Intake registers (and queues) files in batches that start small: the workers of an ingest
start on the first files while the rest are still copied, and a large intake still
registers in few transactions."""

from __future__ import annotations

import itertools
from pathlib import Path

from casescope.config import Settings
from casescope.evidence.intake import (
    FIRST_REGISTER_BATCH,
    REGISTER_BATCH,
    IntakeReport,
    ingest_paths,
)
from casescope.model.db import Database
from casescope.services.cases import create_case


def test_the_first_batch_is_small_and_each_next_twice_the_last_up_to_the_bound(
    settings: Settings, db: Database, tmp_path: Path, attack_samples: Path
) -> None:
    evidence = tmp_path / "evidence"
    samples = sorted(attack_samples.rglob("*.evtx"))
    for n in range(600):  # distinct bytes: every file is queued, none a duplicate
        target = evidence / f"{n:03d}.evtx"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(samples[n % len(samples)].read_bytes() + n.to_bytes(4, "big"))
    seen: list[tuple[int, int]] = []

    def on_batch(report: IntakeReport) -> None:
        seen.append((report.total, len(report.queued)))

    report = ingest_paths(db, settings, create_case(db, "batches"), [evidence], on_batch=on_batch)

    totals = [total for total, _ in seen]
    sizes = [b - a for a, b in itertools.pairwise([0, *totals])]
    assert sizes[0] == FIRST_REGISTER_BATCH
    expected = [min(FIRST_REGISTER_BATCH * 2**k, REGISTER_BATCH) for k in range(len(sizes))]
    assert sizes[:-1] == expected[:-1]
    assert 0 < sizes[-1] <= expected[-1]
    assert sum(sizes) == 600 == report.total
    assert [queued for _, queued in seen] == [total for total, _ in seen]  # queued as registered

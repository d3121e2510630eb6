"""Evidence deleted from the store while its file is queued: that file fails naming the path,
every other file completes, and `doctor` reports the missing evidence."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from casescope.evidence.intake import ingest_paths
from casescope.model.enums import FileStatus
from casescope.model.tables import EvidenceFile
from casescope.services.cases import create_case
from tests.e2e.conftest import Cli
from tests.faults.conftest import db_for, index_counts, smallest_samples


def test_evidence_deleted_while_queued(cli: Cli, attack_samples: Path) -> None:
    db = db_for(cli)
    report = ingest_paths(
        db, db.settings, create_case(db, "gone"), smallest_samples(attack_samples, 5)
    )
    victim = report.queued[2]
    with db.session() as session:
        stored = Path(session.get(EvidenceFile, victim).stored_path)
    stored.unlink()

    cli.worker()

    with db.session() as session:
        rows = {
            f.id: (f.status, f.error, f.event_count) for f in session.scalars(select(EvidenceFile))
        }
    status, error, _ = rows.pop(victim)
    assert status is FileStatus.FAILED and error == f"evidence file is missing: {stored}"
    assert {s for s, _, _ in rows.values()} == {FileStatus.COMPLETED}
    events = sum(count for _, _, count in rows.values())
    assert index_counts(cli) == (events, events)
    doctor = cli.run("doctor", "--check", check=False)
    assert doctor.returncode == 1
    assert f"evidence missing file {victim}: {stored}" in " ".join(doctor.stdout.split())
    assert "verified 5 files: 4 completed, 1 failed" in doctor.stdout

"""`casescope ingest` end to end on the real attack samples, real SQLite and real chDB."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import evtx
import pytest
from sqlalchemy import select

from casescope.config import Settings
from casescope.model.enums import AuditAction, FileStatus, IndexState
from casescope.model.tables import AuditRecord, EvidenceFile
from casescope.store.index import ChdbIndex
from casescope.store.owner import index_lock
from tests.e2e.conftest import Cli


def evtx_count(path: Path) -> int:
    """What the `evtx` crate itself reads from a file (the oracle for our counts)."""
    count = 0
    parser = evtx.PyEvtxParser(str(path), number_of_threads=1)
    for record in parser.records_json():
        if not isinstance(record, Exception):
            count += 1
    return count


def _status(cli: Cli, *args: str) -> dict:
    """`status --format json`, run in this process (`Cli.invoke`) where it reads what real
    `ingest` and `reindex` processes wrote; the next test runs it as a process of its own."""
    proc = cli.invoke("status", "--format", "json", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, attack_samples: Path) -> Cli:
    cli = Cli(tmp_path_factory.mktemp("ingest") / "home")
    proc = cli.run("ingest", "--case", "attack", str(attack_samples))
    assert "279 files" in proc.stdout, proc.stdout  # 277 EVTX + README + LICENSE
    assert "1 duplicates" in proc.stdout  # two sample names hold the same bytes
    return cli


def test_every_sample_file_completes_with_evtx_counts(ingested: Cli, attack_samples: Path) -> None:
    samples = sorted(attack_samples.rglob("*.evtx"))
    by_sha = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in samples}
    with ingested.db().session() as session:
        files = {f.sha256: f for f in session.scalars(select(EvidenceFile))}
    # every distinct EVTX content is one completed file with exactly what `evtx` reads
    for sha, path in by_sha.items():
        f = files[sha]
        count = evtx_count(path)
        assert f.status is FileStatus.COMPLETED, (path, f.error)
        assert f.event_count == count, path
        assert f.hidden == (count == 0)
        assert f.index_state is IndexState.LOADED or count == 0
    assert sum(evtx_count(p) for p in samples) == 8255
    # the non-EVTX files in the folder are recorded as rejected with the reason, not dropped
    others = {f.original_path: f for f in files.values() if f.sha256 not in by_sha}
    assert {Path(p).name for p in others} == {"README.md", "LICENSE.GPL"}
    assert all("not recognised as evidence" in f.error for f in others.values())
    assert all(f.status is FileStatus.REJECTED for f in others.values())


def test_status_reads_the_metadata_db_and_leaves_the_index_closed(ingested: Cli) -> None:
    """`status` answers from the metadata DB: it counts the loaded files' events while
    another process owns the index, and does not open the index when no load waits."""
    lock = Settings(home=ingested.home).owner_lock_path
    with index_lock(lock, "a test holding the index"):
        held = json.loads(ingested.run("status", "--format", "json").stdout)
    assert held["events_indexed"] == held["events_parsed"] > 8000
    ingested.run("status")
    assert "casescope status" not in lock.read_text()  # the last opener wrote its role


def test_index_holds_every_event_once(ingested: Cli) -> None:
    status = _status(ingested)
    with ingested.db().session() as session:
        parsed = sum(session.scalars(select(EvidenceFile.event_count)))
    assert status["events_indexed"] == parsed == status["events_parsed"]
    assert status["files_by_status"] == {"completed": 276, "rejected": 2}
    index = ChdbIndex(ingested.home / "index")
    try:
        dupes = index.scalar(
            "SELECT count() FROM (SELECT file_id, seq FROM casescope.events "
            "GROUP BY file_id, seq HAVING count() > 1)"
        )
        assert dupes == 0
    finally:
        index.close()


def test_every_step_is_audited(ingested: Cli) -> None:
    with ingested.db().session() as session:
        actions = session.scalars(select(AuditRecord.action)).all()
    for step in (
        AuditAction.STEP_ESTIMATING,
        AuditAction.STEP_INDEXING,
        AuditAction.STEP_SIGMA,
        AuditAction.STEP_IOC,
    ):
        assert actions.count(step) == 276, step


def test_same_evidence_twice_is_a_duplicate(ingested: Cli, attack_samples: Path) -> None:
    sample = next(attack_samples.rglob("*.evtx"))
    proc = ingested.run("ingest", "--case", "attack", str(sample))
    assert "1 duplicates" in proc.stdout
    with ingested.db().session() as session:
        assert len(session.scalars(select(EvidenceFile.id)).all()) == 278


def test_same_evidence_in_another_case_reuses_the_segment(
    ingested: Cli, attack_samples: Path, tmp_path: Path
) -> None:
    sample = next(p for p in attack_samples.rglob("*.evtx") if evtx_count(p) > 10)
    copy = tmp_path / "renamed & moved.evtx"
    shutil.copy(sample, copy)
    ingested.run("ingest", "--case", "other", str(copy))
    with ingested.db().session() as session:
        other = session.scalar(select(EvidenceFile).where(EvidenceFile.original_path == str(copy)))
        details = session.scalars(
            select(AuditRecord.detail).where(
                AuditRecord.action == AuditAction.STEP_INDEXING, AuditRecord.file_id == other.id
            )
        ).all()
    assert "re-used segment" in details[0]
    status = _status(ingested, "--case", "other")
    assert status["events_indexed"] == evtx_count(sample)


def test_reindex_replaces_a_files_rows(ingested: Cli) -> None:
    with ingested.db().session() as session:
        target = session.scalar(
            select(EvidenceFile).where(EvidenceFile.event_count > 20).order_by(EvidenceFile.id)
        )
    before = _status(ingested)["events_indexed"]
    proc = ingested.run("reindex", "--case", "attack", "--file", str(target.id))
    assert "queued 1 files for re-index" in proc.stdout
    after = _status(ingested)
    assert after["events_indexed"] == before
    with ingested.db().session() as session:
        row = session.get(EvidenceFile, target.id)
        generation = row.index_generation
        reindexed = session.scalars(
            select(AuditRecord.id).where(
                AuditRecord.file_id == target.id, AuditRecord.action == AuditAction.STEP_INDEXING
            )
        ).all()
    assert row.status is FileStatus.COMPLETED and generation == 2 and len(reindexed) == 2
    index = ChdbIndex(ingested.home / "index")
    try:
        assert index.counts_by_file(target.case_id)[target.id] == target.event_count
    finally:
        index.close()


def test_unknown_map_column_is_refused_before_anything_is_queued(
    tmp_path: Path, attack_samples: Path
) -> None:
    cli = Cli(tmp_path / "home")
    sample = next(attack_samples.rglob("*.evtx"))
    proc = cli.run(
        "ingest", "--case", "m", "--map", "timestamp=EventTime", str(sample), check=False
    )
    assert (
        proc.returncode != 0 and "--map: unknown column(s) timestamp" in proc.stdout + proc.stderr
    )
    evidence = cli.home / "evidence"
    assert not evidence.exists() or not any(p.is_file() for p in evidence.rglob("*"))


def test_reindex_with_a_new_map_fixes_the_timestamp_column(tmp_path: Path) -> None:
    """Ingested with the collector's time in @timestamp; the event time was EventTime."""
    cli = Cli(tmp_path / "home")
    lines = [
        {"@timestamp": "2026-01-05T09:00:00Z", "EventTime": f"2024-03-0{n}T12:00:00Z", "n": n}
        for n in (1, 2, 3)
    ]
    export = tmp_path / "edr.jsonl"
    export.write_text("".join(json.dumps(line) + "\n" for line in lines))
    cli.run("ingest", "--case", "edr", str(export))

    def times() -> list[str]:
        # in this process (`Cli.invoke`): the search reads what `ingest`/`reindex` wrote
        found = cli.invoke("search", "--case", "edr", "n:*", "--format", "jsonl").stdout
        return sorted(json.loads(line)["ts"][:10] for line in found.splitlines())

    assert times() == ["2026-01-05"] * 3
    refused = cli.invoke("reindex", "--case", "edr", "--map", "when=EventTime")
    assert refused.returncode == 1 and "--map: unknown column(s) when" in refused.stderr
    cli.run("reindex", "--case", "edr", "--map", "ts=EventTime")
    assert times() == ["2024-03-01", "2024-03-02", "2024-03-03"]
    with cli.db().session() as session:
        assert json.loads(session.scalar(select(EvidenceFile.field_map))) == {"ts": "EventTime"}

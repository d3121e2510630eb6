"""IOCs hunted by the worker on real EVTX samples: the right event, field and IOC."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from casescope.config import Settings
from casescope.hunt.matcher import compile_iocs
from casescope.jobs.case_iocs import enabled_iocs
from casescope.model.db import Database
from casescope.model.enums import AuditAction, FileType, Operation
from casescope.model.tables import AuditRecord, Case, EvidenceFile, IocHit, Job, Segment
from casescope.parse.files import iter_batches
from casescope.parse.report import ParseReport
from casescope.services.iocs import add_iocs, rehunt
from tests.integration.ioc.conftest import hit_count, ingest, run_worker, stored_hits

IOCS = [
    "192.168.56.1",  # SharpRDP's SourceIp; 192.168.56.101 (DestinationIp) must not hit
    "10.0.2.1",  # absent: only 10.0.2.1x addresses occur in the samples
    "inwitelecom.net",  # hits its subdomain aka105.inwitelecom.net
    "27.static.afterburst.com",  # must not hit inside 45-76-12-27.static.afterburst.com
    "telecom.net",  # must not hit inwitelecom.net
    "AD7B9C14083B52BC532FBA5948342B98",  # cmd.exe's MD5 in a Sysmon Hashes field
]


def _expected(db: Database, case: Case, files: dict[str, int]) -> set[tuple[int, int, int, str]]:
    """The matcher run directly on the parsed samples (what the worker must have stored)."""
    with db.read() as session:
        matcher = compile_iocs(enabled_iocs(session, case.id))
    expected = set()
    for path, file_id in files.items():
        for batch in iter_batches(Path(path), FileType.EVTX, ParseReport()):
            table = matcher.match(batch).to_pydict()
            expected |= {(file_id, s, i, f) for s, i, f in zip(*table.values(), strict=True)}
    return expected


def _ids(db: Database, case: Case) -> dict[str, int]:
    with db.read() as session:
        return {ioc.value.upper(): ioc.id for ioc in enabled_iocs(session, case.id)}  # type: ignore[misc]


def _segments(db: Database) -> dict[int, tuple[str, int]]:
    """Segment id -> (path, mtime): a re-hunt must leave them as they are."""
    with db.read() as session:
        segments = session.scalars(select(Segment)).all()
        return {s.id: (s.path, Path(s.path).stat().st_mtime_ns) for s in segments}


def test_hits_name_the_event_field_and_ioc(
    db: Database, settings: Settings, case: Case, samples: list[Path]
) -> None:
    add_iocs(db, settings, case.id, IOCS)  # before ingest: hunted in the same pass
    sharp, wmic = ingest(db, settings, case, samples)
    ids = _ids(db, case)
    hits = stored_hits(db)
    assert hits == _expected(db, case, {str(samples[0]): sharp, str(samples[1]): wmic})
    ip = ids["192.168.56.1"]
    assert {(s, f) for fid, s, i, f in hits if i == ip} == {
        (0, "SourceIp"),
        (7, "SourceIp"),
        (13, "SourceIp"),
        (21, "SourceIp"),
    }
    assert {(fid, s, f) for fid, s, i, f in hits if i == ids["INWITELECOM.NET"]} == {
        (wmic, 6, "DestinationHostname")
    }
    md5 = ids["AD7B9C14083B52BC532FBA5948342B98"]
    assert {(fid, s, f) for fid, s, i, f in hits if i == md5} == {(wmic, 5, "Hashes")}
    silent = {ids["10.0.2.1"], ids["27.STATIC.AFTERBURST.COM"], ids["TELECOM.NET"]}
    assert not [hit for hit in hits if hit[2] in silent]
    with db.read() as session:
        row = session.scalar(select(IocHit).where(IocHit.ioc_id == md5))
        assert row is not None and row.record_id == 896 and row.case_id == case.id
        assert "MD5=AD7B9C14083B52BC532FBA5948342B98" in row.excerpt and row.ts is not None


def test_ioc_added_after_ingest_is_hunted_without_reparsing(
    db: Database, settings: Settings, case: Case, samples: list[Path]
) -> None:
    files = ingest(db, settings, case, samples)
    assert hit_count(db) == 0
    segments = _segments(db)
    change = add_iocs(db, settings, case.id, IOCS)
    assert change.queued == 2 and len(change.added) == len(IOCS)
    with db.read() as session:
        operations = session.scalars(select(Job.operation).where(Job.state == "queued")).all()
    assert sorted(operations) == [Operation.IOC_ONLY] * 2
    run_worker(settings)
    hits = stored_hits(db)
    assert hits == _expected(db, case, {str(p): f for p, f in zip(samples, files, strict=True)})
    assert len(hits) == 6
    with db.read() as session:
        actions = session.scalars(select(AuditRecord.action)).all()
        statuses = session.scalars(select(EvidenceFile.status)).all()
    assert _segments(db) == segments  # not rewritten
    assert actions.count(AuditAction.STEP_INDEXING) == 2  # parsed once, at ingest
    assert (
        actions.count(AuditAction.STEP_IOC) == 4 and AuditAction.QUEUE_IOC_ONLY in actions
    )  # ingest + re-hunt
    assert set(statuses) == {"completed"}

    rehunt(db, settings, case.id)  # again: hits replaced, not doubled
    run_worker(settings)
    assert stored_hits(db) == hits and hit_count(db) == len(hits)

"""New IOCs hunted in the event index: only they are hunted, every other hit stays as it is."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.enums import FileStatus, IndexState
from casescope.model.tables import Case, EvidenceFile, IocHit
from casescope.services.iocs import add_iocs, rehunt, set_enabled
from casescope.store.index import ChdbIndex
from casescope.store.owner import open_index
from tests.integration.ioc.conftest import ingest, run_worker

IP = "192.168.56.1"  # SharpRDP: 4 hits
#: Several types, some with many hits in both samples (inferred: domain, ip, string).
NEW = ["inwitelecom.net", "10.0.2.15", "powershell"]
REGEX = r"\\system32\\\w+\.exe$"  # hunted on the original values

HitRow = tuple[object, ...]


@pytest.fixture
def index(settings: Settings) -> Iterator[ChdbIndex]:
    with open_index(settings, role="test") as owned:
        yield owned


def _rows(db: Database) -> dict[int, HitRow]:
    """Every stored hit by id: (file, seq, record id, time, IOC, field, excerpt)."""
    columns = (IocHit.id, IocHit.file_id, IocHit.seq, IocHit.record_id, IocHit.ts)
    columns += (IocHit.ioc_id, IocHit.field, IocHit.excerpt)
    with db.read() as session:
        return {row[0]: tuple(row[1:]) for row in session.execute(select(*columns))}


def _content(rows: dict[int, HitRow]) -> list[HitRow]:
    return sorted(rows.values(), key=repr)


def test_new_iocs_are_hunted_in_the_index_and_old_hits_stay(
    db: Database, settings: Settings, case: Case, samples: list[Path], index: ChdbIndex
) -> None:
    (ip,) = add_iocs(db, settings, case.id, [IP]).added
    ingest(db, settings, case, samples)
    before = _rows(db)
    assert len(before) == 4 and {row[4] for row in before.values()} == {ip}

    change = add_iocs(db, settings, case.id, NEW, index=index)
    regex = add_iocs(db, settings, case.id, [REGEX], "regex", index=index)
    assert change.queued == 0 and change.index_hits and len(change.added) == len(NEW)
    assert regex.queued == 0 and regex.index_hits
    change.added += regex.added
    after = _rows(db)
    assert {k: v for k, v in after.items() if v[4] == ip} == before  # same ids, same rows
    new_hits = {k: v for k, v in after.items() if v[4] != ip}
    assert len(new_hits) == change.index_hits + regex.index_hits
    assert {row[4] for row in new_hits.values()} == set(change.added)

    # adding the same IOCs again hunts nothing and doubles nothing
    again = add_iocs(db, settings, case.id, NEW, index=index)
    assert again.added == [] and again.existing == len(NEW) and _rows(db) == after

    # a from-scratch hunt (workers re-read every segment with all IOCs) finds the same hits
    assert rehunt(db, settings, case.id).queued == 2
    run_worker(settings)
    assert _content(_rows(db)) == _content(after)


def test_re_enabled_iocs_are_hunted_in_the_index(
    db: Database, settings: Settings, case: Case, samples: list[Path], index: ChdbIndex
) -> None:
    _, domain = add_iocs(db, settings, case.id, [IP, NEW[0]]).added
    ingest(db, settings, case, samples)
    full = _rows(db)
    set_enabled(db, settings, case.id, [domain], False)
    kept = _rows(db)
    assert len(kept) == 4
    change = set_enabled(db, settings, case.id, [domain], True, index=index)
    assert change.index_hits == 1 and change.queued == 0
    after = _rows(db)
    assert {k: v for k, v in after.items() if k in kept} == kept
    assert _content(after) == _content(full)


def test_completed_files_not_in_the_index_are_re_hunted_from_segments(
    db: Database, settings: Settings, case: Case, samples: list[Path], index: ChdbIndex
) -> None:
    ingest(db, settings, case, samples)
    with db.session() as session:  # as if loading the second file had failed
        second = max(session.scalars(select(EvidenceFile.id)))
        session.execute(
            update(EvidenceFile)
            .where(EvidenceFile.id == second)
            .values(index_state=IndexState.NONE)
        )
    change = add_iocs(db, settings, case.id, [IP, NEW[0]], index=index)
    assert change.index_hits == 4 and change.queued == 1  # SharpRDP in the index; WMIC queued
    run_worker(settings)
    with db.read() as session:
        status = session.scalar(select(EvidenceFile.status).where(EvidenceFile.id == second))
        ioc_ids = list(session.scalars(select(IocHit.ioc_id).order_by(IocHit.ioc_id)))
    assert status is FileStatus.COMPLETED and ioc_ids == [change.added[0]] * 4 + [change.added[1]]

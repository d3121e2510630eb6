"""Disabling, enabling and removing IOCs: hits go at once, come back by a re-hunt."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from casescope.config import Settings
from casescope.hunt.ioc import IocError
from casescope.hunt.matcher import compile_iocs
from casescope.jobs.analyzers import IocAnalyzer
from casescope.jobs.case_iocs import enabled_iocs, ioc_set_hash
from casescope.jobs.context import WorkerContext
from casescope.jobs.worker import _ioc_analyzer
from casescope.model.db import Database
from casescope.model.enums import FileType, Operation
from casescope.model.tables import Case, IocHit
from casescope.model.tables import Ioc as IocRow
from casescope.parse.files import iter_batches
from casescope.parse.report import ParseReport
from casescope.services.cases import get_or_create_case
from casescope.services.ioc_hits import HitFilter, hit_summary, iter_hits
from casescope.services.iocs import (
    add_iocs,
    list_iocs,
    remove_iocs,
    set_enabled,
)
from casescope.workqueue.queue import ClaimedJob
from tests.integration.ioc.conftest import hit_count, ingest, run_worker, stored_hits

IP, DOMAIN = "192.168.56.1", "inwitelecom.net"


def _hits_of(db: Database, ioc_id: int) -> int:
    with db.read() as session:
        return len(session.scalars(select(IocHit.id).where(IocHit.ioc_id == ioc_id)).all())


def test_disable_enable_remove(
    db: Database, settings: Settings, case: Case, samples: list[Path]
) -> None:
    ip, domain = add_iocs(db, settings, case.id, [IP, DOMAIN]).added
    ingest(db, settings, case, samples)
    assert _hits_of(db, ip) == 4 and _hits_of(db, domain) == 1

    change = set_enabled(db, settings, case.id, [ip], False)
    assert (
        change.changed == [ip]
        and change.queued == 0
        and _hits_of(db, ip) == 0
        and _hits_of(db, domain) == 1
    )
    assert [r.enabled for r in list_iocs(db, case.id)] == [False, True]
    run_worker(settings)  # nothing queued, nothing changes
    assert _hits_of(db, ip) == 0

    change = set_enabled(db, settings, case.id, [ip, domain], True)
    assert change.added == [ip] and change.existing == 1 and change.queued == 2
    run_worker(settings)
    assert _hits_of(db, ip) == 4 and _hits_of(db, domain) == 1

    assert remove_iocs(db, case.id, [ip]) == 4
    assert [r.id for r in list_iocs(db, case.id)] == [domain] and _hits_of(db, ip) == 0
    summary = hit_summary(db, HitFilter(case.id))
    assert [(s.ioc_id, s.hits, s.events, s.files) for s in summary] == [(domain, 1, 1, 1)]


def test_ids_of_another_case_are_refused(db: Database, settings: Settings, case: Case) -> None:
    other = get_or_create_case(db, "other")[0]
    (mine,) = add_iocs(db, settings, case.id, [IP]).added
    (theirs,) = add_iocs(db, settings, other.id, [IP]).added
    with pytest.raises(IocError, match=f"no IOC with id {theirs}"):
        set_enabled(db, settings, case.id, [mine, theirs], False)
    with pytest.raises(IocError, match=f"no IOC with id {theirs}"):
        remove_iocs(db, case.id, [theirs])
    assert [r.enabled for r in list_iocs(db, case.id)] == [True]
    assert len(list_iocs(db, other.id)) == 1


def test_persist_drops_hits_of_iocs_disabled_meanwhile(
    db: Database, settings: Settings, case: Case, samples: list[Path]
) -> None:
    """A re-hunt in flight when an IOC is disabled must not bring its hits back."""
    ingest(db, settings, case, samples[:1])
    ip, other = add_iocs(db, settings, case.id, [IP, "192.168.56.101"]).added
    with db.read() as session:
        analyzer = IocAnalyzer(compile_iocs(enabled_iocs(session, case.id)), case.id)
    for batch in iter_batches(samples[0], FileType.EVTX, ParseReport()):
        analyzer.consume(batch)
    set_enabled(db, settings, case.id, [ip], False)
    with db.session() as session:
        written = analyzer.persist(session, 1)
        again = analyzer.persist(session, 1)  # a retry: replaced, not doubled
    assert written == again == _hits_of(db, other) > 0 and _hits_of(db, ip) == 0


def _ioc_analyzer_for(ctx: WorkerContext, job: ClaimedJob, case_id: int) -> IocAnalyzer | None:
    """The worker's IOC analyzer for a job, in a read transaction as the worker builds it."""
    with ctx.db.read() as session:
        iocs = enabled_iocs(session, case_id)
        return _ioc_analyzer(ctx, job, iocs, case_id, ioc_set_hash(iocs))


def test_worker_compiles_each_ioc_set_once(
    db: Database, settings: Settings, case: Case, samples: list[Path]
) -> None:
    files = ingest(db, settings, case, samples)
    add_iocs(db, settings, case.id, [IP])
    ctx = WorkerContext(settings=settings, db=db, worker_id="w")
    first = _ioc_analyzer_for(ctx, ClaimedJob(1, files[0], Operation.IOC_ONLY, 1), case.id)
    second = _ioc_analyzer_for(ctx, ClaimedJob(2, files[1], Operation.IOC_ONLY, 1), case.id)
    assert first is not None and second is not None and first.matcher is second.matcher
    add_iocs(db, settings, case.id, [DOMAIN])
    third = _ioc_analyzer_for(ctx, ClaimedJob(3, files[0], Operation.FULL, 1), case.id)
    assert third is not None and third.matcher is not first.matcher
    assert len(third.matcher.patterns) == 2 and len(ctx.ioc_matchers) == 2


def test_no_iocs_no_analyzer_except_for_a_rehunt(
    db: Database, settings: Settings, case: Case, samples: list[Path]
) -> None:
    (file_id,) = ingest(db, settings, case, samples[:1])
    ctx = WorkerContext(settings=settings, db=db, worker_id="w")
    assert _ioc_analyzer_for(ctx, ClaimedJob(1, file_id, Operation.FULL, 1), case.id) is None
    rehunt = _ioc_analyzer_for(ctx, ClaimedJob(1, file_id, Operation.IOC_ONLY, 1), case.id)
    assert rehunt is not None and not rehunt.wants_events


HOSTILE = [
    "'; DROP TABLE iocs; --",
    "<script>alert(1)</script>",
    "say \"hi\", 'bye'",
    '=HYPERLINK("http://x")',
    "Robert'); DELETE FROM ioc_hits WHERE ('1'='1",
]


def test_hostile_values_are_stored_as_given(db: Database, settings: Settings, case: Case) -> None:
    change = add_iocs(db, settings, case.id, HOSTILE, "string", note="<b>note</b>'--")
    assert len(change.added) == len(HOSTILE)
    records = list_iocs(db, case.id)
    assert [r.original for r in records] == HOSTILE
    assert [r.value for r in records] == [v.lower() for v in HOSTILE]
    assert {r.note for r in records} == {"<b>note</b>'--"}
    with db.read() as session:
        assert len(session.scalars(select(IocRow.id)).all()) == len(HOSTILE)
    assert list(iter_hits(db, HitFilter(case.id))) == [] and hit_count(db) == 0
    assert stored_hits(db) == set()


def test_add_is_all_or_nothing(db: Database, settings: Settings, case: Case) -> None:
    with pytest.raises(IocError, match="'xyz' is not a valid md5"):
        add_iocs(db, settings, case.id, [IP, "xyz"], "md5")
    with pytest.raises(IocError, match="unknown IOC type"):
        add_iocs(db, settings, case.id, [IP], "nope")
    assert list_iocs(db, case.id) == []
    again = add_iocs(db, settings, case.id, [IP, IP, "192.168.56.1 "])
    assert len(again.added) == 1 and again.duplicates == 2
    assert add_iocs(db, settings, case.id, ["192[.]168[.]56[.]1"]).existing == 1

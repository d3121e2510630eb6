"""Large EVTX files parsed in slices by a real worker pool (jobs/slices.py): the same events
(seq and fields), detections and IOC hits as a whole-file ingest, slices worked by two
workers, and nothing lost or doubled when a worker holding a slice, or the file's owner, is
SIGKILLed mid-file."""

from __future__ import annotations

import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest
from bench.common import make_large_evtx
from sqlalchemy import func, select

from casescope.model.db import Database
from casescope.model.enums import SliceState
from casescope.model.tables import (
    Detection,
    EvidenceFile,
    FileSlice,
    Ioc,
    IocHit,
    Job,
    LoadPiece,
    Rule,
    WorkerRecord,
)
from casescope.parse.evtx_slices import chunk_counts
from casescope.store.index import ChdbIndex
from casescope.store.loader import load_pending
from tests.e2e.conftest import Cli
from tests.faults.conftest import db_for, duplicate_results, pool
from tests.waiting import wait_for

MIB = 2**20
#: The generated file: ~26,000 events, in 3 slices of ~8 MiB under `SLICED`.
LARGE_MIB = 24
#: Slices of at least 2 chunks, one per worker; every file claimed alone (a group of small
#: files is never sliced); pieces of 2,000 events in batches of 500, so a slice writes several.
SLICED = {
    "CASESCOPE_SLICE_MIN_MB": "0.125",
    "CASESCOPE_WORKERS": "3",
    "CASESCOPE_GROUP_MAX_BYTES": "0",
    "CASESCOPE_LOAD_PIECE_EVENTS": "2000",
    "CASESCOPE_BATCH_SIZE": "500",
}
WHOLE = {"CASESCOPE_SLICE_MIN_MB": "100000"}
IOCS = ("rundll32.exe", "cmd.exe", "192.168.56.1", "schtasks.exe")


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory, attack_samples: Path) -> Path:
    """The generated large file and the three largest multi-chunk attack samples."""
    folder = tmp_path_factory.mktemp("slices") / "evidence"
    folder.mkdir()
    samples = sorted(attack_samples.rglob("*.evtx"))
    make_large_evtx(folder / "large.evtx", LARGE_MIB * MIB, samples)
    sliceable = [p for p in samples if len(chunk_counts(p) or []) >= 4]
    for path in sorted(sliceable, key=lambda p: p.stat().st_size)[-3:]:
        shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory, sigma_dir: Path) -> Path:
    """Process-creation rules: the samples hold events that they match."""
    target = tmp_path_factory.mktemp("rules")
    for rule in (sigma_dir / "rules" / "windows" / "process_creation").glob("*.yml"):
        (target / rule.name).write_bytes(rule.read_bytes())
    return target


@dataclass(frozen=True)
class Results:
    """What an ingest left, keyed by the evidence file's name."""

    events: dict[str, set[tuple[int, int]]]  # (seq, hash of the event's columns)
    detections: dict[str, list[tuple[int, str]]]  # (seq, rule uid), sorted
    hits: dict[str, list[tuple[int, str, str]]]  # (seq, IOC value, field), sorted


def _home(tmp_path: Path, rules: Path, **env: str) -> Cli:
    cli = Cli(tmp_path / "home", extra=env)
    cli.run("rules", "import", str(rules))
    cli.run("case", "create", "slices")
    cli.run("ioc", "add", "--case", "slices", *IOCS)
    return cli


def _results(cli: Cli) -> Results:
    cli.run("status")  # the index owner loads whatever is ready
    db = db_for(cli)
    with db.read() as session:
        names = dict(session.execute(select(EvidenceFile.id, EvidenceFile.original_path)).all())
        detections = session.execute(
            select(Detection.file_id, Detection.seq, Rule.rule_uid).join(
                Rule, Rule.id == Detection.rule_id
            )
        ).all()
        hits = session.execute(
            select(IocHit.file_id, IocHit.seq, Ioc.value, IocHit.field).join(
                Ioc, Ioc.id == IocHit.ioc_id
            )
        ).all()
    db.dispose()
    index = ChdbIndex(cli.home / "index")
    try:
        rows = index.query_rows(
            "SELECT file_id, seq, cityHash64(ts, computer, raw, toString(fields)) AS h "
            "FROM casescope.events"
        )
    finally:
        index.close()
    name = {fid: Path(path).name for fid, path in names.items()}
    events: dict[str, set[tuple[int, int]]] = {n: set() for n in name.values()}
    counts: dict[str, int] = dict.fromkeys(name.values(), 0)
    for row in rows:
        events[name[row["file_id"]]].add((row["seq"], row["h"]))
        counts[name[row["file_id"]]] += 1
    assert counts == {n: len(e) for n, e in events.items()}  # no event twice
    by_file_d: dict[str, list[tuple[int, str]]] = {n: [] for n in name.values()}
    for fid, seq, uid in detections:
        by_file_d[name[fid]].append((seq, uid))
    by_file_h: dict[str, list[tuple[int, str, str]]] = {n: [] for n in name.values()}
    for fid, seq, value, field in hits:
        by_file_h[name[fid]].append((seq, value, field))
    return Results(
        events,
        {n: sorted(v) for n, v in by_file_d.items()},
        {n: sorted(v) for n, v in by_file_h.items()},
    )


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory, evidence: Path, rules: Path) -> Results:
    """The reference: every file ingested whole."""
    cli = _home(tmp_path_factory.mktemp("whole"), rules, **WHOLE)
    cli.run("ingest", "--case", "slices", str(evidence), timeout=600)
    return _results(cli)


def _assert_same(got: Results, expected: Results) -> None:
    assert got.events.keys() == expected.events.keys()
    for name in expected.events:
        assert got.events[name] == expected.events[name], name
        assert got.detections[name] == expected.detections[name], name
        assert got.hits[name] == expected.hits[name], name
    assert sum(len(d) for d in expected.detections.values()) > 0  # the rules found something
    assert sum(len(h) for h in expected.hits.values()) > 0


def _slices(db: Database) -> list[FileSlice]:
    with db.read() as session:
        return list(session.scalars(select(FileSlice).order_by(FileSlice.id)))


def test_a_sliced_ingest_equals_a_whole_one_and_uses_two_workers(
    tmp_path: Path, evidence: Path, rules: Path, whole: Results
) -> None:
    cli = _home(tmp_path, rules, **SLICED)
    cli.run("ingest", "--case", "slices", str(evidence), timeout=600)
    _assert_same(_results(cli), whole)
    db = db_for(cli)
    done = _slices(db)
    assert {s.state for s in done} == {SliceState.DONE}
    with db.read() as session:
        large = session.scalar(
            select(EvidenceFile.id).where(EvidenceFile.original_path.like("%large.evtx"))
        )
        sliced_files = session.scalar(select(func.count(func.distinct(FileSlice.file_id))))
    assert sliced_files == 4  # the generated file and the three samples
    mine = [s for s in done if s.file_id == large]
    assert len(mine) == 3 and len({s.worker_id for s in mine}) >= 2, mine


def _pid(db: Database, worker_id: str) -> int:
    with db.read() as session:
        pid = session.scalar(select(WorkerRecord.pid).where(WorkerRecord.id == worker_id))
    assert pid is not None, worker_id
    return pid


def _loaded_piece_of(db: Database, part: FileSlice, loaded: bool = False) -> bool:
    """Whether a piece of `part` is published (`loaded`: and loaded into the index)."""
    query = select(func.count()).where(
        LoadPiece.job_id == part.job_id,
        LoadPiece.attempt == part.attempt,
        LoadPiece.seq_from >= part.seq_from,
        LoadPiece.seq_to <= part.seq_from + part.events,
    )
    if loaded:
        query = query.where(LoadPiece.loaded)
    with db.read() as session:
        return (session.scalar(query) or 0) > 0


def _first_piece_out(db: Database, part: FileSlice) -> bool:
    """Whether the first piece of `part`'s attempt is published: the others load after it."""
    query = select(func.count()).where(
        LoadPiece.job_id == part.job_id, LoadPiece.attempt == part.attempt, LoadPiece.piece == 0
    )
    with db.read() as session:
        return (session.scalar(query) or 0) > 0


def _victim(db: Database, owner: bool) -> FileSlice | None:
    """A running slice of the large file with a piece published that can load, held by the
    job's owner (`owner`) or by another worker."""
    with db.read() as session:
        owners = dict(session.execute(select(Job.id, Job.worker_id)).all())
    for part in _slices(db):
        if part.state is not SliceState.RUNNING or part.worker_id is None:
            continue
        if (owners.get(part.job_id) == part.worker_id) is not owner:
            continue
        if _loaded_piece_of(db, part) and _first_piece_out(db, part):
            return part
    return None


def _load_ready(cli: Cli, db: Database) -> None:
    """Act as the index owner once: load the pieces published so far."""
    index = ChdbIndex(cli.home / "index")
    try:
        load_pending(db, index, db.settings)
    finally:
        index.close()


def _kill_mid_slice(cli: Cli, owner: bool) -> FileSlice:
    """Run a pool on the queued evidence; SIGKILL a worker holding a slice once a piece of
    that slice is in the index; the slice killed."""
    db = db_for(cli)
    # leases outlast the test's pauses: the dead worker's slice is queued again by the pool
    workers = pool(cli, workers=3, CASESCOPE_LEASE_SECONDS="120", **SLICED)
    try:
        found: list[FileSlice] = []
        what = f"a running slice of {'the owner' if owner else 'a helper'} with a piece out"
        wait_for(lambda: found.append(v) or True if (v := _victim(db, owner)) else False, what)
        victim = found[0]
        pid = _pid(db, victim.worker_id or "")
        os.kill(pid, signal.SIGSTOP)  # held mid-slice while its first pieces are loaded
        _load_ready(cli, db)
        assert _loaded_piece_of(db, victim, loaded=True)  # the dead run left rows behind
        os.kill(pid, signal.SIGKILL)
        assert workers.wait(timeout=300) == 0, workers.stderr.read() if workers.stderr else ""
    finally:
        if workers.poll() is None:
            workers.kill()
            workers.wait()
    return victim


def _queue(cli: Cli, evidence: Path) -> None:
    cli.run("ingest", "--case", "slices", "--no-wait", str(evidence / "large.evtx"))


def test_sigkill_of_a_worker_holding_a_slice_loses_and_doubles_nothing(
    tmp_path: Path, evidence: Path, rules: Path, whole: Results
) -> None:
    cli = _home(tmp_path, rules, **SLICED)
    _queue(cli, evidence)
    victim = _kill_mid_slice(cli, owner=False)
    db = db_for(cli)
    again = next(s for s in _slices(db) if s.id == victim.id)
    assert again.state is SliceState.DONE and again.runs == 2  # claimed again, once
    got = _results(cli)
    assert got.events["large.evtx"] == whole.events["large.evtx"]
    assert got.detections["large.evtx"] == whole.detections["large.evtx"]
    assert got.hits["large.evtx"] == whole.hits["large.evtx"]
    assert duplicate_results(db) == (0, 0)


def test_sigkill_of_the_owner_replans_and_keeps_nothing_of_its_attempt(
    tmp_path: Path, evidence: Path, rules: Path, whole: Results
) -> None:
    cli = _home(tmp_path, rules, **SLICED)
    _queue(cli, evidence)
    victim = _kill_mid_slice(cli, owner=True)
    db = db_for(cli)
    with db.read() as session:
        job = session.get(Job, victim.job_id)
        assert job is not None and job.attempts == victim.attempt + 1
    assert {s.attempt for s in _slices(db)} == {victim.attempt + 1}
    got = _results(cli)
    assert got.events["large.evtx"] == whole.events["large.evtx"]
    assert got.detections["large.evtx"] == whole.detections["large.evtx"]
    assert got.hits["large.evtx"] == whole.hits["large.evtx"]
    assert duplicate_results(db) == (0, 0)
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(LoadPiece)) == 0

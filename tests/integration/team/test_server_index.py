"""The ClickHouse-server index (team mode) on the real engine, through clickhouse-connect.

No ClickHouse server can be installed here: `CASESCOPE_INDEX_URL=chdb:///path` runs
`ClickHouseServerIndex` on clickhouse-connect's in-process chDB interface, so its client
calls, its SQL and its Arrow inserts run on ClickHouse itself. `CASESCOPE_TEST_CLICKHOUSE_URL`
(scripts/team-smoke.sh) runs the same tests against a real server instead.

chDB holds one engine path per process, so each index here lives in a child process of its
own (tests/integration/team/probe.py, loader_child.py), never in pytest's. The kill test's
loaders, several processes on one index, reach it over HTTP: the `clickhouse_http` endpoint
(tests/clickhouse_http.py, the transport's test double over chDB, or the real server).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select, update

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.enums import IndexState
from casescope.model.tables import Case, EvidenceFile
from casescope.parse.evtx import iter_evtx
from casescope.parse.report import ParseReport
from casescope.services.case_delete import delete_case
from casescope.services.case_lifecycle import CaseBusyError
from casescope.store.index_url import parse_index_url
from casescope.store.load_claims import load_claims
from casescope.store.owner import open_index
from casescope.store.segments import SegmentWriter
from casescope.store.server_index import ClickHouseServerIndex
from tests.conftest import REPO_ROOT, ClickHouseEndpoint, clickhouse_double
from tests.integration.conftest import Backend, add_files
from tests.integration.test_loader import mark_ready

#: A real ClickHouse server for these tests (scripts/team-smoke.sh); unset: chDB's interface.
SERVER_URL = os.environ.get("CASESCOPE_TEST_CLICKHOUSE_URL")
#: Files of the kill test: a large one, loaded in many slices, and a small one.
KILL_FILES = (
    "Command and Control/bits_openvpn.evtx",  # 1,537 events
    "Execution/Sysmon_Exec_CompiledHTML.evtx",
)
#: The kill test's loader inserts at most this many events at a time (many INSERTs a file).
SLICE_ROWS = 100
#: INSERTs the first loader completes before it is killed, mid-file.
KILL_AFTER_INSERTS = 3


def index_url(home: Path) -> str:
    """The index of a test's home: its own chDB path, or the real server emptied first (its
    tests count every row of the table; scripts/team-smoke.sh)."""
    if SERVER_URL is None:
        return f"chdb://{home / 'chdb-index'}"
    index = ClickHouseServerIndex(parse_index_url(SERVER_URL))
    try:
        index.execute("TRUNCATE TABLE casescope.events")
    finally:
        index.close()
    return SERVER_URL


def _child(module: str, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", f"tests.integration.team.{module}", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout


@pytest.mark.skipif(SERVER_URL is not None, reason="compares with the embedded index")
def test_server_transport_answers_as_the_embedded_index(
    tmp_path: Path, attack_samples: Path
) -> None:
    """Load (whole files, slices, a bundle), search page, counts, facets, timeline, export,
    index-side IOC hunt, a query past its time bound, delete: the same answers from the
    server implementation as from chDB's own, on the same segments."""
    embedded = orjson.loads(_child("probe", str(tmp_path / "a"), str(attack_samples)))
    server = orjson.loads(
        _child("probe", str(tmp_path / "b"), str(attack_samples), index_url(tmp_path / "b"))
    )
    assert server == embedded
    events = embedded["events"]
    answers = embedded["before"]
    assert answers["by_file"] == events  # every event of every file, the sliced one included
    assert answers["count"] == answers["distinct"] == sum(events.values())
    assert 0 < answers["search_total"] < answers["count"]
    assert len(answers["search_rows"]) == min(25, answers["search_total"])
    assert answers["facet"] and answers["field_facet"]
    assert sum(events for _, events in answers["timeline"]) == answers["count"]
    assert answers["slice_present"] and answers["ddl_version"] == 1
    assert {ioc_id for _, _, ioc_id, _ in answers["ioc_hits"]} == {1, 2, 3}
    assert embedded["timeout"] == "QueryTimeoutError"
    # a bundle's listed file loads, the other file it holds does not
    assert embedded["bundle"] == events | {"5": events["1"]}
    assert embedded["after_delete"]["by_file"] == {
        k: v for k, v in embedded["bundle"].items() if k != "2"
    }
    assert embedded["after_case_delete"] == 0


@pytest.fixture
def team(
    tmp_path: Path,
    postgres_cluster,  # type: ignore[no-untyped-def]
    clickhouse_http: ClickHouseEndpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict]:
    """A home with its metadata on PostgreSQL and its index on a ClickHouse HTTP endpoint
    (the test double over chDB, or CASESCOPE_TEST_CLICKHOUSE_URL's server), which each
    loader process reaches over the network as on a team's server."""
    env = {
        "CASESCOPE_HOME": str(tmp_path / "home"),
        "CASESCOPE_DATABASE_URL": postgres_cluster.database(),
        "CASESCOPE_INDEX_URL": clickhouse_http.emptied(),
        "CASESCOPE_LOAD_BATCH_ROWS": str(SLICE_ROWS),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield env


def _ready_files(settings: Settings, db: Database, samples: Path) -> dict[str, int]:
    """The kill test's files, parsed into segments and pending a load: events per file id."""
    events = {}
    for file_id, name in zip(add_files(db, len(KILL_FILES), queued=False), KILL_FILES, strict=True):
        final = settings.segments_dir / f"{file_id:064x}.parquet"
        rows = 0
        with SegmentWriter(final, settings.tmp_dir) as writer:
            for batch in iter_evtx(samples / name, ParseReport(), 500):
                writer.write(batch)
                rows += batch.num_rows
            path = writer.commit()
        mark_ready(db, file_id, path, rows)
        events[str(file_id)] = rows
    return events


@contextmanager
def _ready_home(samples: Path) -> Iterator[tuple[Settings, Database, dict[str, int]]]:
    """This test's settings (its CASESCOPE_* environment), its metadata DB, and the kill
    test's files ready for a load (events per file id); the DB disposed after."""
    settings = Settings()
    settings.ensure_dirs()
    db = Database(settings)
    try:
        yield settings, db, _ready_files(settings, db, samples)
    finally:
        db.dispose()


def _kill_mid_file(env: dict[str, str]) -> list[str]:
    """Run a loader and SIGKILL it once it has sent KILL_AFTER_INSERTS INSERTs."""
    loader = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.team.loader_child", "load"],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert loader.stdout is not None
    lines = [loader.stdout.readline() for _ in range(KILL_AFTER_INSERTS)]
    loader.send_signal(signal.SIGKILL)
    _, errors = loader.communicate(timeout=60)
    assert loader.returncode == -signal.SIGKILL, errors[-4000:]
    return lines


def test_a_loader_killed_mid_file_leaves_each_event_once(team: dict, attack_samples: Path) -> None:
    """While another process holds the files' claims, a load leaves them alone. SIGKILL a
    loader mid-file (between the INSERTs of a file's slices, or during one); the next load
    deletes what it left and loads the file again: every file's events are in the index
    once, and every file is marked loaded."""
    with _ready_home(attack_samples) as (_, db, events):
        ids = [int(file_id) for file_id in events]
        with _claimed_elsewhere(ids):  # another process loads them: this one leaves them
            assert "done 0 files" in _child("loader_child", "load")
        assert _claims_freed(db, ids)
    assert set(orjson.loads(_child("loader_child", "inspect"))["states"].values()) == {
        IndexState.PENDING
    }
    lines = _kill_mid_file(team)
    assert all(line.startswith("inserted ") for line in lines), lines
    partial = orjson.loads(_child("loader_child", "inspect"))
    first = min(events)
    assert 0 < partial["by_file"][first] < events[first]  # killed mid-file
    assert partial["states"][first] == IndexState.PENDING
    assert "done 2 files" in _child("loader_child", "load")
    after = orjson.loads(_child("loader_child", "inspect"))
    assert after["by_file"] == events
    assert after["rows"] == after["distinct"] == sum(events.values())
    assert set(after["states"].values()) == {IndexState.LOADED}


def _claims_freed(db: Database, file_ids: list[int]) -> bool:
    """Whether these files can be claimed, asking until a dead holder's session has ended
    (PostgreSQL ends it when it sees the closed socket)."""
    for _ in range(500):
        with load_claims(db) as claims:
            if claims.locks.try_lock(file_ids) == set(file_ids):
                return True
        time.sleep(0.01)
    return False


@contextmanager
def _claimed_elsewhere(file_ids: list[int]) -> Iterator[None]:
    """Another process holds the claims of these files (this test's settings) for the
    block; then it is SIGKILLed."""
    holder = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.team.claim_child", *map(str, file_ids)],
        cwd=REPO_ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held", holder.stderr
        yield
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=60)


@pytest.mark.parametrize("backend", list(Backend), indirect=True)
def test_a_killed_claimant_loses_its_claims(
    settings: Settings, db: Database, backend: Backend
) -> None:
    """A file is claimed by one live process at a time (with SQLite the home's lease claims
    every file); a killed holder loses its claims at once, and only its own."""
    with _claimed_elsewhere([1, 2]), load_claims(db) as claims:
        others = {Backend.POSTGRESQL: {3}, Backend.SQLITE: set()}[backend]
        assert claims.locks.try_lock([1, 2, 3]) == others
    assert _claims_freed(db, [1, 2])
    with load_claims(db) as first, load_claims(db) as second:
        assert first.locks.try_lock([1, 2]) == {1, 2}
        assert second.locks.try_lock([1, 2, 3]) == others


def _wait_for_file(path: Path) -> None:
    """Until `path` exists (bounded: reaching the bound fails the test, a hang)."""
    for _ in range(1200):
        if path.exists():
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


@pytest.mark.skipif(SERVER_URL is not None, reason="needs the double's INSERT hold")
def test_an_insert_that_outlives_its_killed_loader_is_not_doubled(
    tmp_path: Path, postgres_cluster, attack_samples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """A server may complete an INSERT it received in full after the loader that sent it
    died: SIGKILL a loader while its INSERT waits at the server; the loader's claims end
    with its process and another process claims and loads the files, fencing the dead
    loader's INSERTs first (`fence_loads`: KILL QUERY of the query-id prefix recorded on the
    files … SYNC). Every file's events are in the index once."""
    hold = tmp_path / "hold"
    with clickhouse_double(tmp_path / "chdb", hold_insert=hold) as url:
        env = {
            "CASESCOPE_HOME": str(tmp_path / "home"),
            "CASESCOPE_DATABASE_URL": postgres_cluster.database(),
            "CASESCOPE_INDEX_URL": url,
            "CASESCOPE_LOAD_BATCH_ROWS": str(SLICE_ROWS),
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        with _ready_home(attack_samples) as (_, db, events):
            hold.touch()
            loader = subprocess.Popen(
                [sys.executable, "-m", "tests.integration.team.loader_child", "load"],
                cwd=REPO_ROOT,
                env=dict(os.environ),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            _wait_for_file(Path(f"{hold}.held"))  # its first INSERT is at the server
            loader.send_signal(signal.SIGKILL)
            loader.communicate(timeout=60)
            assert _claims_freed(db, [int(file_id) for file_id in events])
            assert "done 2 files" in _child("loader_child", "load")
            hold.unlink()  # the server now runs the dead loader's INSERT
            _wait_for_file(Path(f"{hold}.done"))
        after = orjson.loads(_child("loader_child", "inspect"))
    assert after["by_file"] == events
    assert after["rows"] == after["distinct"] == sum(events.values())


def _loader(env: dict[str, str] | None = None) -> subprocess.Popen:
    """A loader process (`loader_child load`) on this test's settings."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.team.loader_child", "load"],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _assert_each_event_once(events: dict[str, int]) -> None:
    after = orjson.loads(_child("loader_child", "inspect"))
    assert after["by_file"] == events
    assert after["rows"] == after["distinct"] == sum(events.values())
    assert set(after["states"].values()) == {IndexState.LOADED}


def test_two_loaders_load_disjoint_files_at_once(
    team: dict, attack_samples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loaders claim files, not the index: a loader stopped (SIGSTOP) mid-file keeps its
    claim, and a second loader meanwhile loads the other file and leaves the stopped one's
    alone; resumed, the first finishes its file. Every file's events once, every file
    loaded. (One file a claim here, CASESCOPE_LOAD_BATCH_FILES=1.)"""
    monkeypatch.setenv("CASESCOPE_LOAD_BATCH_FILES", "1")
    with _ready_home(attack_samples) as (_, _, events):
        pass  # ready to load: the loaders here are processes of their own
    big, small = sorted(events, key=int)
    first = _loader()
    assert first.stdout is not None
    try:
        assert first.stdout.readline().startswith("inserted ")  # mid-file: one slice in
        first.send_signal(signal.SIGSTOP)
        stopped = orjson.loads(_child("loader_child", "inspect"))["by_file"]
        assert "done 1 files" in _child("loader_child", "load")
        during = orjson.loads(_child("loader_child", "inspect"))
        assert during["by_file"][small] == events[small]
        assert during["by_file"][big] == stopped[big] < events[big]  # left to its claimant
        assert during["states"][big] == IndexState.PENDING
    finally:
        first.send_signal(signal.SIGCONT)
        out, errors = first.communicate(timeout=120)
    assert first.returncode == 0, errors[-4000:]
    assert "done 1 files" in out
    _assert_each_event_once(events)


#: A query-id prefix of a loader that died long ago: a claimant fences it, harmlessly.
DEAD_CLAIMANT = "casescope-load-" + "0" * 32 + "-"


@pytest.mark.skipif(SERVER_URL is not None, reason="needs the double's INSERT hold")
def test_a_new_claimant_never_stops_a_live_loaders_insert(
    tmp_path: Path, postgres_cluster, attack_samples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The fence is per claimant: while a live loader's INSERT waits at the server, another
    loader claims the other file, stops the INSERTs of that file's previous (dead)
    claimant, and loads it; the waiting INSERT then runs and its loader finishes. Every
    file's events once, every file loaded."""
    hold = tmp_path / "hold"
    with clickhouse_double(tmp_path / "chdb", hold_insert=hold) as url:
        for name, value in {
            "CASESCOPE_HOME": str(tmp_path / "home"),
            "CASESCOPE_DATABASE_URL": postgres_cluster.database(),
            "CASESCOPE_INDEX_URL": url,
            "CASESCOPE_LOAD_BATCH_FILES": "1",
        }.items():
            monkeypatch.setenv(name, value)
        with _ready_home(attack_samples) as (_, db, events), db.session() as session:
            session.execute(  # the second file was claimed by a dead loader
                update(EvidenceFile)
                .where(EvidenceFile.id == int(max(events, key=int)))
                .values(load_claimant=DEAD_CLAIMANT)
            )
        hold.touch()
        first = _loader()
        try:
            _wait_for_file(Path(f"{hold}.held"))  # the first loader's INSERT is at the server
            assert "done 1 files" in _child("loader_child", "load")
        finally:
            hold.unlink()
            out, errors = first.communicate(timeout=120)
        assert first.returncode == 0, errors[-4000:]
        assert "done 1 files" in out
        _assert_each_event_once(events)


def test_a_case_is_deleted_only_while_no_loader_holds_its_files(
    team: dict, attack_samples: Path
) -> None:
    """Team mode has no index owner: a deletion holds the load claims of the case's files,
    so no loader inserts them after their rows were deleted. While another live process
    holds them, the deletion waits, then refuses and deletes nothing; once it is gone the
    case goes, index rows included."""
    with _ready_home(attack_samples) as (settings, db, events):
        assert "done 2 files" in _child("loader_child", "load")
        ids = sorted(map(int, events))
        with db.read() as session:
            case = session.scalars(
                select(Case).join(EvidenceFile, EvidenceFile.case_id == Case.id).limit(1)
            ).one()
            case_id, name = case.id, case.name
        with open_index(settings, role="test") as index:
            with _claimed_elsewhere(ids[:1]), pytest.raises(CaseBusyError, match="being loaded"):
                delete_case(db, index, settings, case_id, name, "test", claim_wait_seconds=1)
            assert index.count(case_id) == sum(events.values())  # nothing deleted
            with db.read() as session:
                assert session.get(Case, case_id) is not None
            report = delete_case(db, index, settings, case_id, name, "test")
            assert report.index_rows == sum(events.values())
            assert index.count(case_id) == 0
    assert orjson.loads(_child("loader_child", "inspect"))["rows"] == 0

"""`casescope migrate` through the real command: a source home with two cases (attack
samples, SigmaHQ rules, IOCs, detections, a mark, a user, a token, a saved search) copied to
an embedded home and to a team target (PostgreSQL and a ClickHouse server); verify passes,
the user logs in, the token works, counts are equal and the source's files stay
byte-identical. Resumes after SIGKILL; bad endpoints and a missing evidence file are clear
errors."""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.tables import Case, Detection, EvidenceFile
from casescope.model.users import EventMark, TokenScope, User
from casescope.services.marks import set_marks
from casescope.services.notes import add_note
from casescope.services.saved_searches import Owner, save_search
from casescope.services.story import add_text
from casescope.services.tokens import NewToken, create_token
from casescope.store.index import ChdbIndex
from casescope.web.app import create_app
from tests.conftest import ClickHouseEndpoint
from tests.e2e.conftest import Cli, SharedHome
from tests.integration.migrations import migrate as migrate_to
from tests.postgres import PostgresCluster

ALPHA = (
    "AutomatedTestingTools/panache_sysmon_vs_EDRTestingScript.evtx",
    "Lateral Movement/LM_wmiexec_impacket_sysmon_whoami.evtx",
)
BETA = ("Discovery/dicovery_4661_net_group_domain_admins_target.evtx",)
SECRET = secrets.token_urlsafe(48)
PASSWORD = "correct horse battery"


@dataclass
class Source:
    cli: Cli
    env_file: Path
    token: str
    #: `_counts` of the source by case, read once: every test leaves the source as it was
    #: (they check its files stay byte-identical), so its counts never change.
    read: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    def counts(self, case: str) -> tuple[int, int, int]:
        if case not in self.read:
            self.read[case] = _counts(self.cli, case)
        return self.read[case]


def _env_file(path: Path, home: Path, **more: str) -> Path:
    lines = [f"CASESCOPE_HOME={home}", f"CASESCOPE_SECRET_KEY={SECRET}"]
    lines += [f"CASESCOPE_{name.upper()}={value}" for name, value in more.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _add_web_state(cli: Cli) -> str:
    """A token of ana's, a mark, a note, a story text and a saved search in case alpha; the
    token's value."""
    db = cli.db()
    try:
        with db.read() as session:
            user_id = session.scalar(select(User.id).where(User.username == "ana"))
            case_id = session.scalar(select(Case.id).where(Case.name == "alpha"))
            file_id = session.scalar(select(EvidenceFile.id).where(EvidenceFile.case_id == case_id))
        token, _ = create_token(db, SECRET, NewToken(user_id, "ci", 30, TokenScope.READ), 90, "t")
        set_marks(db, case_id, [(file_id, 3)], EventMark.STAR, "", "ana")
        add_note(db, case_id, (file_id, 3), "ana", "seen on the DC first")
        add_text(db, case_id, "Initial access", "ana")
        save_search(db, Owner(user_id, case_id), "whoami", {"q": "whoami"})
        return token
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def source(
    tmp_path_factory: pytest.TempPathFactory, sigma_dir: Path, attack_samples: Path
) -> Source:
    root = tmp_path_factory.mktemp("migrate")
    rules = root / "rules"
    rules.mkdir()
    for rule in sorted((sigma_dir / "rules" / "windows" / "process_creation").glob("*.yml"))[::4]:
        (rules / rule.name).write_bytes(rule.read_bytes())
    cli = Cli(root / "source", {"CASESCOPE_SECRET_KEY": SECRET})
    cli.run("rules", "import", str(rules), "--name", "sigmahq")
    cli.run("ingest", "--case", "alpha", *(str(attack_samples / s) for s in ALPHA))
    cli.run("ingest", "--case", "beta", *(str(attack_samples / s) for s in BETA))
    # what migrate copies, made in this process (`Cli.invoke`): these commands are not tested
    for args in (
        ("ioc", "add", "--case", "alpha", "10.0.2.15", "whoami.exe"),
        ("user", "create", "ana", "--password", PASSWORD),
        ("user", "grant", "ana", "--case", "alpha"),
    ):
        assert cli.invoke(*args).returncode == 0, args
    token = _add_web_state(cli)
    return Source(cli, _env_file(root / "source.env", cli.home), token)


def _digest(home: Path) -> dict[str, str]:
    return {
        str(path.relative_to(home)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(home.rglob("*"))
        if path.is_file()
    }


def _migrate(tmp_path: Path, *args: str, check: bool = True, input: str | None = None):
    """`casescope migrate` in a process whose own CASESCOPE_HOME is elsewhere: only --from
    and --to may decide the endpoints."""
    wide = {"COLUMNS": "400"}  # whole paths on one line
    return Cli(tmp_path / "unrelated-home", wide).run("migrate", *args, check=check, input=input)


def _counts(cli: Cli, case: str) -> tuple[int, int, int]:
    """Detections, IOC hits and events of `case`, as the commands list them. They run in this
    process (`Cli.invoke`): they read a home migrate wrote, they are not what is tested."""
    detections = _read(cli, "detections", "--case", case, "--format", "jsonl")
    hits = _read(cli, "hits", "--case", case, "--format", "jsonl")
    found = _read(cli, "search", "--case", case, "--format", "jsonl", "--limit", "10000", "*")
    return len(detections.splitlines()), len(hits.splitlines()), len(found.splitlines())


def _read(cli: Cli, *args: str) -> str:
    proc = cli.invoke(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _web_checks(settings: Settings, token: str) -> None:
    app = create_app(settings)
    with TestClient(app, base_url="https://testserver") as client:
        r = client.post("/api/login", json={"username": "ana", "password": PASSWORD})
        assert r.status_code == 200, r.text
    bearer = TestClient(app, base_url="https://testserver")
    r = bearer.get("/api/cases", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert [case["name"] for case in r.json()] == ["alpha"]


@dataclass
class Migrated:
    """The source planned and migrated once to an embedded home by a plain `migrate run`,
    kept as it was then for each test that checks or changes such a target (a run copies
    every file of both cases: one per module, not one per test)."""

    home: SharedHome
    source_env: Path  # `--from` of the run
    #: The target's env file (CASESCOPE_HOME, the source's secret key): `--to` of the run.
    env_file: Path
    planned: str  # what `migrate plan` printed before the run
    ran: str  # what `migrate run` printed
    #: `_digest` of the source before the plan and the run.
    source_before: dict[str, str]

    def args(self) -> tuple[str, ...]:
        return ("--from", str(self.source_env), "--to", str(self.env_file))


@pytest.fixture(scope="module")
def migrated(source: Source, tmp_path_factory: pytest.TempPathFactory) -> Migrated:
    root = tmp_path_factory.mktemp("embedded")
    before = _digest(source.cli.home)
    target = _env_file(root / "target.env", root / "target")
    planned = _migrate(root, "plan", "--from", str(source.env_file), "--to", str(target)).stdout
    ran = _migrate(root, "run", "--from", str(source.env_file), "--to", str(target)).stdout
    home = SharedHome(Cli(root / "target")).seal()
    return Migrated(home, source.env_file, target, planned, ran, before)


def test_to_an_embedded_home(source: Source, migrated: Migrated, tmp_path: Path) -> None:
    before = migrated.source_before
    target = migrated.env_file
    home = migrated.home.fresh().home
    planned = migrated.planned.splitlines()
    lines = {line.split()[0]: line.split() for line in planned if line.strip()}
    assert lines["events"][3] == "3"  # files: both cases' evidence
    assert all(lines[phase][-1] == "s" for phase in ("config", "findings", "events"))
    assert "migrated 2 case(s)" in migrated.ran
    checked = _migrate(
        tmp_path,
        *("verify", "--from", str(source.env_file), "--to", str(target)),
        *("--login", "ana", "--token"),
        input=f"{PASSWORD}\n{source.token}\n",
    ).stdout
    assert "checks passed" in checked and "login of ana" in checked and "API token" in checked
    assert "saved search" in checked and "detections" in checked
    assert "event_notes" in checked and "story_items" in checked
    phase = ("--phase", "findings", "--from", str(source.env_file), "--to", str(target))
    one = _migrate(tmp_path, "verify", *phase)
    assert "detections" in one.stdout and "config" not in one.stdout
    status = _migrate(tmp_path, "status", "--to", str(target)).stdout
    _migrate(tmp_path, "run", "--from", str(source.env_file), "--to", str(target))
    assert _migrate(tmp_path, "status", "--to", str(target)).stdout == status  # nothing again
    assert _digest(source.cli.home) == before
    for case in ("alpha", "beta"):
        assert _counts(Cli(home), case) == source.counts(case)
    assert source.counts("alpha")[0] > 0 and source.counts("alpha")[1] > 0
    env = {"CASESCOPE_HOME": str(home), "CASESCOPE_SECRET_KEY": SECRET}
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        _web_checks(Settings(), source.token)


def test_to_a_team_deployment_and_back(
    source: Source,
    tmp_path: Path,
    postgres_cluster: PostgresCluster,
    clickhouse_http: ClickHouseEndpoint,
) -> None:
    """To PostgreSQL and a ClickHouse server (the suite's HTTP endpoint), then from there back
    to an embedded home: verify reads the server's index as it is on both trips."""
    url = postgres_cluster.database()
    index = clickhouse_http.emptied()
    target = _env_file(tmp_path / "team.env", tmp_path / "team", database_url=url, index_url=index)
    before = _digest(source.cli.home)
    _migrate(tmp_path, "run", "--from", str(source.env_file), "--to", str(target))
    _migrate(tmp_path, "verify", "--from", str(source.env_file), "--to", str(target))
    assert _digest(source.cli.home) == before
    team = Cli(tmp_path / "team", {"CASESCOPE_DATABASE_URL": url, "CASESCOPE_INDEX_URL": index})
    for case in ("alpha", "beta"):
        assert _counts(team, case) == source.counts(case)
    # a PostgreSQL and ClickHouse source, read in read-only transactions, back to an embedded home
    back = tmp_path / "back"
    _migrate(tmp_path, "run", "--from", str(target), "--to", str(back))
    _migrate(tmp_path, "verify", "--from", str(target), "--to", str(back))
    # keys were copied as they were: the sequences moved past them, new rows insert
    assert "(id 3)" in _read(team, "case", "create", "gamma")


def _checkpoint(db_path: Path, phase: str) -> tuple[int, bool] | None:
    """(rows, done) of the first unfinished checkpoint of `phase` with rows, if any."""
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as connection:
            row = connection.execute(
                "SELECT rows, done FROM migration_checkpoints "
                "WHERE phase = ? AND rows > 0 AND done = 0",
                (phase,),
            ).fetchone()
    except sqlite3.OperationalError:  # not created yet
        return None
    return row


def _kill_during(args: list[str], env: dict[str, str], db_path: Path, phase: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "casescope", "migrate", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while proc.poll() is None and _checkpoint(db_path, phase) is None:
            time.sleep(0.02)
        assert proc.poll() is None, f"the run ended before it was in phase {phase}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def test_sigkill_in_a_db_phase_and_in_the_events_phase_then_resume(
    source: Source, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    args = ["run", "--from", str(source.env_file), "--to", str(target)]
    slow = [*args, "--batch-rows", "1", "--batch-files", "1"]
    env = Cli(tmp_path / "unrelated-home").env
    _kill_during(slow, env, target / "casescope.db", "findings")
    _kill_during(slow, env, target / "casescope.db", "events")
    _migrate(tmp_path, *args)
    _migrate(tmp_path, "verify", "--from", str(source.env_file), "--to", str(target))
    db = Database(Settings(home=target))
    try:
        with db.read() as session:
            copied = len(session.scalars(select(Detection.id)).all())
    finally:
        db.dispose()
    assert copied == sum(source.counts(case)[0] for case in ("alpha", "beta"))


def _error(tmp_path: Path, *args: str) -> str:
    proc = _migrate(tmp_path, *args, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return " ".join((proc.stdout + proc.stderr).split())


def test_same_source_and_target_is_refused(source: Source, tmp_path: Path) -> None:
    home = str(source.cli.home)
    assert "source and target are the same home" in _error(
        tmp_path, "run", "--from", str(source.env_file), "--to", home
    )


def test_a_target_at_a_newer_revision_is_refused(source: Source, tmp_path: Path) -> None:
    target = tmp_path / "newer"
    Database(Settings(home=target)).dispose()
    with sqlite3.connect(target / "casescope.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    message = _error(tmp_path, "plan", "--from", str(source.env_file), "--to", str(target))
    assert "target database is at schema revision 9999, newer than this casescope" in message


def test_a_case_name_the_target_uses_is_refused_naming_it(source: Source, tmp_path: Path) -> None:
    taken = Cli(tmp_path / "taken")
    assert taken.invoke("case", "create", "other").returncode == 0  # not tested: in-process
    assert taken.invoke("case", "create", "alpha").returncode == 0  # id 2; the source's is 1
    message = _error(tmp_path, "run", "--from", str(source.env_file), "--to", str(taken.home))
    assert "the target has a case named 'alpha' already (id 2" in message
    assert _migrate(tmp_path, "status", "--to", str(taken.home)).stdout.count("config") == 0


def test_a_missing_evidence_file_is_reported_and_the_rest_migrated(
    source: Source, tmp_path: Path
) -> None:
    db = source.cli.db()
    with db.read() as session:
        beta = session.scalar(select(Case.id).where(Case.name == "beta"))
        missing = session.scalars(select(EvidenceFile).where(EvidenceFile.case_id == beta)).one()
    db.dispose()
    stored = Path(missing.stored_path)
    aside = stored.with_name(stored.name + ".aside")
    target = tmp_path / "target"
    stored.rename(aside)
    try:
        out = _error(tmp_path, "run", "--from", str(source.env_file), "--to", str(target))
        checked = _error(tmp_path, "verify", "--from", str(source.env_file), "--to", str(target))
    finally:
        aside.rename(stored)
    assert f"file {missing.id} {missing.original_path}: evidence missing on the source" in out
    assert f"evidence file {missing.id} {missing.original_path}" in checked
    # its case's events, its own events and its evidence; nothing else
    assert "verify: 3 difference(s)" in checked
    migrated = Cli(target)
    assert _counts(migrated, "alpha") == source.counts("alpha")


def test_a_source_at_an_older_revision_is_read_from_an_upgraded_copy(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old_settings = Settings(home=old)
    old_settings.home_dir.mkdir(parents=True)
    migrate_to(old_settings, "0020")  # a home of a casescope before notes, stories, migrate
    with sqlite3.connect(old / "casescope.db") as connection:
        connection.execute(
            "INSERT INTO cases (name, description, created_at) "
            "VALUES ('x', '', '2024-01-01 00:00:00.000000')"
        )
    before = _digest(old)
    target = tmp_path / "new"
    _migrate(tmp_path, "run", "--from", str(old), "--to", str(target), "--phase", "config")
    assert _digest(old) == before
    assert "x" in _read(Cli(target), "case", "list")


def _rows(db_path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db_path) as connection:
        return connection.execute(sql).fetchall()


def test_a_case_that_fails_verify_is_redone_alone(migrated: Migrated, tmp_path: Path) -> None:
    args = migrated.args()
    db_path = migrated.home.fresh().home / "casescope.db"
    beta = "SELECT * FROM detections WHERE case_id = 2 ORDER BY id"
    beta_before = _rows(db_path, beta)
    with sqlite3.connect(db_path) as connection:
        connection.execute("DELETE FROM detections WHERE id = (SELECT min(id) FROM detections)")
    assert "detections alpha" in _error(tmp_path, "verify", *args, "--failures-only")
    _migrate(tmp_path, "run", *args, "--cases", "alpha", "--redo")
    _migrate(tmp_path, "verify", *args)
    assert _rows(db_path, beta) == beta_before
    assert "--redo re-does the cases named by --cases" in _error(tmp_path, "run", *args, "--redo")


def test_a_missing_segment_is_reported_not_a_traceback(source: Source, tmp_path: Path) -> None:
    db = source.cli.db()
    with db.read() as session:
        beta = session.scalar(select(Case.id).where(Case.name == "beta"))
        file = session.scalars(select(EvidenceFile).where(EvidenceFile.case_id == beta)).one()
        segment = Path(file.segment.path)
    db.dispose()
    aside = segment.with_name(segment.name + ".aside")
    segment.rename(aside)
    try:
        out = _error(tmp_path, "run", "--from", str(source.env_file), "--to", str(tmp_path / "t"))
    finally:
        aside.rename(segment)
    assert f"file {file.id} {file.original_path}: segment missing or unreadable" in out
    assert "migrated 2 case(s)" in out


def test_a_case_comes_in_under_another_name_with_as(source: Source, tmp_path: Path) -> None:
    """The target has an `alpha` of its own: without --as the run is refused naming it;
    with --as the source's alpha comes in beside it under new keys, verify (given the
    same --as) passes, and the target's own alpha is untouched."""
    taken = Cli(tmp_path / "taken")
    taken.run("ingest", "--case", "alpha", *(str(p) for p in _evidence(source.cli, "beta")))
    own = _counts(taken, "alpha")
    args = ("--from", str(source.env_file), "--to", str(taken.home), "--cases", "alpha")
    assert "--as NEW_NAME" in _error(tmp_path, "run", *args)
    _migrate(tmp_path, "run", *args, "--as", "alpha-src")
    assert "checks passed" in _migrate(tmp_path, "verify", *args, "--as", "alpha-src").stdout
    assert _counts(taken, "alpha-src") == source.counts("alpha")
    assert _counts(taken, "alpha") == own
    two = ("--from", str(source.env_file), "--to", str(taken.home), "--cases", "alpha,beta")
    assert "--as renames one case" in _error(tmp_path, "run", *two, "--as", "x")


def _evidence(cli: Cli, case: str) -> list[Path]:
    db = cli.db()
    try:
        with db.read() as session:
            case_id = session.scalar(select(Case.id).where(Case.name == case))
            stored = session.scalars(
                select(EvidenceFile.stored_path).where(EvidenceFile.case_id == case_id)
            )
            return [Path(path) for path in stored]
    finally:
        db.dispose()


def test_an_event_missing_on_the_target_fails_verify_naming_its_file(
    source: Source, migrated: Migrated, tmp_path: Path
) -> None:
    """One event deleted from the target's index: verify (reading the source's index from
    its linked copy) names the file, and the source stays byte-identical."""
    target = migrated.home.fresh().home
    args = migrated.args()
    before = _digest(source.cli.home)
    [file] = _evidence_rows(Cli(target), "beta")
    index = ChdbIndex(Settings(home=target).index_dir)
    try:
        index.execute(
            "DELETE FROM casescope.events WHERE file_id = {f:UInt32} AND seq = 1", {"f": file.id}
        )
    finally:
        index.close()
    checked = _error(tmp_path, "verify", *args, "--failures-only")
    assert f"file {file.id} {file.original_path}" in checked
    assert "verify: 2 difference(s)" in checked  # the case's total and the file
    assert _digest(source.cli.home) == before


def _evidence_rows(cli: Cli, case: str) -> list[EvidenceFile]:
    db = cli.db()
    try:
        with db.read() as session:
            case_id = session.scalar(select(Case.id).where(Case.name == case))
            return list(
                session.scalars(select(EvidenceFile).where(EvidenceFile.case_id == case_id))
            )
    finally:
        db.dispose()


def test_one_and_three_copying_threads_give_the_same_verified_target(
    source: Source, tmp_path: Path
) -> None:
    """`--jobs 1` copies in the main thread, `--jobs 3` in a pool: both targets verify, and
    hold the same files, events and checkpoints (files, bytes copied)."""
    done = {}
    for jobs in ("1", "3"):
        target = tmp_path / f"jobs{jobs}"
        args = ("--from", str(source.env_file), "--to", str(target))
        _migrate(tmp_path, "run", *args, "--jobs", jobs, "--batch-files", "2")
        assert "checks passed" in _migrate(tmp_path, "verify", *args).stdout
        files = "SELECT id, sha256, stored_path, index_state FROM evidence_files ORDER BY id"
        marks = "SELECT unit, rows, bytes, done FROM migration_checkpoints WHERE phase = 'events'"
        stored = [
            (i, sha, Path(p).relative_to(target), s)
            for i, sha, p, s in _rows(target / "casescope.db", files)
        ]
        done[jobs] = (stored, _rows(target / "casescope.db", marks), _counts(Cli(target), "alpha"))
    assert done["1"] == done["3"]

"""`casescope case export` and `casescope case import` through the real command: a case with
attack samples, SigmaHQ rules, detections, IOC hits, a mark, a note, a story text, a saved
search and a grant goes out as a bundle and comes back, into a fresh home and (with --as)
beside itself, with equal counts. A tampered, truncated, unsafe or newer bundle is refused
before anything is registered; an import killed with SIGKILL finishes when run again."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from casescope.config import Settings
from casescope.model.story import StoryItem
from casescope.model.tables import Case, Detection, EvidenceFile, Ioc, IocHit, Rule
from casescope.model.users import (
    CaseAccess,
    EventMark,
    EventMarkRecord,
    EventNote,
    Role,
    SavedSearch,
    User,
)
from casescope.parse.schema import PARSER_VERSION
from casescope.services.marks import set_marks
from casescope.services.notes import add_note
from casescope.services.saved_searches import Owner, save_search
from casescope.services.story import add_text
from casescope.services.users import create_user, grant_case
from casescope.store.owner import index_lock
from tests.bundles import evidence_member, manifest_of, resealed, rewrite
from tests.e2e.conftest import Cli

ALPHA = (
    "AutomatedTestingTools/panache_sysmon_vs_EDRTestingScript.evtx",
    "Lateral Movement/LM_wmiexec_impacket_sysmon_whoami.evtx",
)


def _add_case_work(cli: Cli) -> None:
    """User ana granted the case; her star and note on one event, a story text and her
    saved search."""
    db = cli.db()
    try:
        user_id = create_user(db, "ana", "correct horse battery", Role.ANALYST).id
        with db.read() as session:
            case_id = session.scalar(select(Case.id).where(Case.name == "alpha"))
            file_id = session.scalar(select(EvidenceFile.id).where(EvidenceFile.case_id == case_id))
        grant_case(db, "ana", case_id)
        set_marks(db, case_id, [(file_id, 3)], EventMark.STAR, "", "ana")
        add_note(db, case_id, (file_id, 3), "ana", "seen on the DC first")
        add_text(db, case_id, "Initial access", "ana")
        save_search(db, Owner(user_id, case_id), "whoami", {"q": "whoami"})
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory, sigma_dir: Path, attack_samples: Path) -> Cli:
    root = tmp_path_factory.mktemp("bundle")
    rules = root / "rules"
    rules.mkdir()
    for rule in sorted((sigma_dir / "rules" / "windows" / "process_creation").glob("*.yml"))[::8]:
        (rules / rule.name).write_bytes(rule.read_bytes())
    cli = Cli(root / "source")
    cli.run("rules", "import", str(rules), "--name", "sigmahq")
    cli.run("ingest", "--case", "alpha", *(str(attack_samples / s) for s in ALPHA))
    cli.run("ioc", "add", "--case", "alpha", "10.0.2.15", "whoami.exe")
    _add_case_work(cli)
    return cli


@pytest.fixture(scope="module")
def bundle(source: Cli) -> Path:
    path = source.home.parent / "alpha.zip"
    out = source.run("case", "export", "alpha", "-o", str(path)).stdout
    assert "exported case alpha" in out
    return path


def _counts(cli: Cli, case: str) -> dict[str, object]:
    """The case's rows per table (read from its SQLite) and its events in the index (read
    by `casescope search`)."""
    db = cli.db()
    try:
        with db.read() as session:
            case_id = session.scalar(select(Case.id).where(Case.name == case))
            rows = {
                table.__name__: session.scalar(
                    select(func.count()).select_from(table).where(table.case_id == case_id)
                )
                for table in (
                    Detection,
                    IocHit,
                    Ioc,
                    EventMarkRecord,
                    EventNote,
                    StoryItem,
                    SavedSearch,
                    CaseAccess,
                    EvidenceFile,
                )
            }
            links = _links(session, case_id)
    finally:
        db.dispose()
    # in this process (`Cli.invoke`): the search reads what export or import made
    found = cli.invoke("search", "--case", case, "--format", "jsonl", "--limit", "10000", "*")
    assert found.returncode == 0, found.stderr
    return {"events": len(found.stdout.splitlines()), "links": links, **rows}


def _links(session: Session, case_id: int) -> str:
    """A hash of what the case's findings point at, by stable keys (the file's sha256, the
    event's seq, the rule's path, the IOC's value): equal only if every link survived."""
    file_sha = select(EvidenceFile.sha256).where(EvidenceFile.id == Detection.file_id)
    detections = select(file_sha.scalar_subquery(), Detection.seq, Rule.path).join(
        Rule, Rule.id == Detection.rule_id
    )
    hit_sha = select(EvidenceFile.sha256).where(EvidenceFile.id == IocHit.file_id)
    hits = select(hit_sha.scalar_subquery(), IocHit.seq, Ioc.value).join(
        Ioc, Ioc.id == IocHit.ioc_id
    )
    mark_sha = select(EvidenceFile.sha256).where(EvidenceFile.id == EventMarkRecord.file_id)
    marks = select(mark_sha.scalar_subquery(), EventMarkRecord.seq, EventMarkRecord.kind)
    rows = [
        *session.execute(detections.where(Detection.case_id == case_id)).all(),
        *session.execute(hits.where(IocHit.case_id == case_id)).all(),
        *session.execute(marks.where(EventMarkRecord.case_id == case_id)).all(),
    ]
    assert rows and all(row[0] is not None for row in rows), rows  # no link left dangling
    return hashlib.sha256("\n".join(sorted(map(str, rows))).encode()).hexdigest()


@pytest.fixture(scope="module")
def expected(source: Cli) -> dict[str, object]:
    counts = _counts(source, "alpha")
    assert counts["Detection"] and counts["IocHit"] and counts["EventMarkRecord"] == 1
    return counts


def test_round_trip_into_a_fresh_home(bundle: Path, expected: dict, tmp_path: Path) -> None:
    target = Cli(tmp_path / "target")
    out = target.run("case", "import", str(bundle)).stdout
    assert "imported case alpha" in out
    assert _counts(target, "alpha") == expected
    db = target.db()
    try:
        with db.read() as session:
            ana = session.scalars(select(User).where(User.username == "ana")).one()
            enabled = session.scalar(select(func.count()).where(Rule.enabled.is_(True)))
            marks = session.scalars(select(EventMarkRecord)).all()
    finally:
        db.dispose()
    # users come in by name, disabled and without a password; rules disabled
    assert (ana.active, ana.password_hash) == (False, "")
    assert enabled == 0
    assert [(m.seq, m.actor) for m in marks] == [(3, "ana")]
    again = target.run("case", "import", str(bundle), check=False)
    assert again.returncode == 1
    assert "a case named 'alpha' already" in again.stderr and "--as" in again.stderr
    assert not list((target.home / "tmp").iterdir())  # the extracted bundle is gone


def test_import_as_into_the_same_home(source: Cli, bundle: Path, expected: dict) -> None:
    before = expected
    out = source.run("case", "import", str(bundle), "--as", "alpha-copy").stdout
    assert "imported case alpha-copy" in out
    assert _counts(source, "alpha-copy") == before
    assert _counts(source, "alpha") == before  # the original is untouched
    db = source.db()
    try:
        with db.read() as session:
            ana = session.scalar(select(User.id).where(User.username == "ana"))
            grants = session.scalars(select(CaseAccess.user_id)).all()
            users = session.scalar(select(func.count()).select_from(User))
    finally:
        db.dispose()
    assert grants == [ana, ana]  # the grant points at this home's ana: no second user
    assert users == 1


def _refused(cli: Cli, bundle: Path) -> str:
    proc = cli.run("case", "import", str(bundle), check=False)
    assert proc.returncode == 1, proc.stdout
    assert "Traceback" not in proc.stderr
    db = cli.db()
    try:
        with db.read() as session:
            assert session.scalar(select(func.count()).select_from(Case)) == 0
            assert session.scalar(select(func.count()).select_from(User)) == 0
    finally:
        db.dispose()
    assert not any(p.is_file() for p in (cli.home / "evidence").rglob("*"))
    return " ".join(proc.stderr.split())


def test_tampered_member_refused_by_name(bundle: Path, tmp_path: Path) -> None:
    """Through the command: exit 1, the member named, no traceback, nothing registered
    (the other refusals: tests/integration/test_case_bundle.py)."""
    member = evidence_member(bundle)
    with zipfile.ZipFile(bundle) as archive:
        data = bytearray(archive.read(member))
    data[100] ^= 0xFF
    tampered = rewrite(bundle, tmp_path / "t.zip", {member: bytes(data)})
    message = _refused(Cli(tmp_path / "home"), tampered)
    assert f"member '{member}' does not match the manifest: sha256" in message


def _checkpoints(db_path: Path, phase: str) -> int:
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as connection:
            return connection.execute(
                "SELECT count(*) FROM migration_checkpoints WHERE phase = ?", (phase,)
            ).fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_import_killed_then_run_again(bundle: Path, expected: dict, tmp_path: Path) -> None:
    target = Cli(tmp_path / "target")
    target.db().dispose()  # the database exists, so its checkpoints can be watched
    db_path = target.home / "casescope.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "casescope", "case", "import", str(bundle), "--as", "kept"],
        env=target.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while proc.poll() is None and _checkpoints(db_path, "findings") == 0:
            time.sleep(0.02)
        assert proc.poll() is None, "the import ended before its findings phase"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    out = target.run("case", "import", str(bundle), "--as", "kept").stdout
    assert "imported case kept" in out
    assert _counts(target, "kept") == expected
    assert _checkpoints(db_path, "config") == 0  # a finished import leaves no checkpoints
    assert not list((target.home / "tmp").glob("import-*"))  # nor its extracted bundle


def test_segments_of_an_older_parser_are_parsed_again(
    bundle: Path, expected: dict, tmp_path: Path
) -> None:
    """A bundle whose segments an older parser wrote: its files are loaded, queued to be
    parsed again, and end with a segment of this parser and the same counts."""
    with zipfile.ZipFile(bundle) as archive:
        (tmp_path / "old.db").write_bytes(archive.read("home/casescope.db"))
    with sqlite3.connect(tmp_path / "old.db") as connection:
        connection.execute("UPDATE segments SET parser_version = ?", (PARSER_VERSION - 1,))
    connection.close()
    data = (tmp_path / "old.db").read_bytes()
    manifest = manifest_of(bundle)
    for member in manifest["members"]:
        if member["path"] == "home/casescope.db":
            member.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    change = {"home/casescope.db": data, "manifest.json": resealed(manifest)}
    older = rewrite(bundle, tmp_path / "older.zip", change)
    target = Cli(tmp_path / "target")
    out = target.run("case", "import", str(older)).stdout
    assert "2 files were parsed by an older parser: queued to be parsed again" in out
    assert _counts(target, "alpha") == expected
    with sqlite3.connect(target.home / "casescope.db") as connection:
        versions = connection.execute(
            "SELECT s.parser_version FROM evidence_files f JOIN segments s ON s.id = f.segment_id"
        ).fetchall()
    assert versions == [(PARSER_VERSION,), (PARSER_VERSION,)]


def test_export_while_the_deployment_runs(source: Cli, bundle: Path, tmp_path: Path) -> None:
    """Export reads this deployment from a consistent snapshot: it is not refused while
    another process owns the index (`serve`, `ingest`), and writes the same members."""
    with index_lock(Settings(home=source.home).owner_lock_path, "a serve of this test"):
        out = source.run("case", "export", "alpha", "-o", str(tmp_path / "live.zip")).stdout
    assert "exported case alpha" in out
    paths = [member["path"] for member in manifest_of(tmp_path / "live.zip")["members"]]
    assert paths == [member["path"] for member in manifest_of(bundle)["members"]]

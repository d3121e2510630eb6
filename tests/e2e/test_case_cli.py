"""`casescope case show|set|close|reopen|delete` end to end: real commands, SQLite and chDB.

Two cases share one evidence file (same bytes): deleting one asks for its name, then removes
its rows, events and unshared files, and leaves the other case's exactly as they were.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from casescope.config import Settings
from casescope.model.tables import Case, EvidenceFile, Job
from casescope.store.index import ChdbIndex
from tests.e2e.conftest import Cli

SHARED = "Lateral Movement/LM_Remote_Service02_7045.evtx"
ONLY_ONE = "Credential Access/kerberos_pwd_spray_4771.evtx"
LATER = "Privilege Escalation/Sysmon_UACME_22.evtx"


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory, attack_samples: Path) -> Cli:
    cli = Cli(tmp_path_factory.mktemp("casecli") / "home")
    cli.run("ingest", "--case", "one", str(attack_samples / SHARED), str(attack_samples / ONLY_ONE))
    cli.run("ingest", "--case", "two", str(attack_samples / SHARED))
    return cli


def _events(cli: Cli) -> dict[int, int]:
    index = ChdbIndex(Settings(home=cli.home).index_dir)
    try:
        return {case_id: index.count(case_id) for case_id in (1, 2)}
    finally:
        index.close()


def test_show_and_set(two: Cli) -> None:
    shown = two.run("case", "show", "one").stdout
    assert "open" in shown and "(nobody)" in shown
    # the owner to be, made in this process (`Cli.invoke`): `user create` is not tested here
    assert two.invoke("user", "create", "boss", "--password", "long enough pw").returncode == 0
    out = two.run("case", "set", "one", "--description", "phishing", "--owner", "boss").stdout
    assert "phishing" in out and "boss" in out
    # the refusals in this process (`Cli.invoke`): what they say and change is the point
    bad = two.invoke("case", "set", "one", "--name", "two")
    assert bad.returncode == 1 and "already exists" in bad.stderr and "Traceback" not in bad.stderr
    bad = two.invoke("case", "set", "one", "--status", "archived")
    assert bad.returncode == 2  # not one of open, closed
    bad = two.invoke("case", "show", "nope")
    assert bad.returncode == 1 and "no case named 'nope'" in bad.stderr


def test_a_closed_case_refuses_every_change(two: Cli, attack_samples: Path) -> None:
    assert "is closed" in two.run("case", "close", "one").stdout
    for command in (
        ("ingest", "--case", "one", str(attack_samples / LATER)),
        ("reindex", "--case", "one", "--no-wait"),
        ("ioc", "add", "--case", "one", "10.9.8.7"),
        ("exclusions", "add", "--case", "one", "--rule", "any"),
        ("mark", "tag", "--case", "one", "--event", "1:1", "closed-tag"),
        ("mark", "star", "--case", "one", "--query", "*"),
        ("note", "add", "--case", "one", "--event", "1:1", "a note on a closed case"),
    ):
        refused = two.invoke(*command)  # in this process: each command's refusal is the point
        assert refused.returncode == 1 and "closed and read-only" in refused.stderr, command
    with two.db().read() as session:
        files = session.scalar(select(func.count(EvidenceFile.id)).where(EvidenceFile.case_id == 1))
    assert files == 2  # nothing taken in
    assert "is open" in two.run("case", "reopen", "one").stdout


def test_delete_asks_for_the_name_and_spares_the_other_case(two: Cli) -> None:
    before = _events(two)
    assert before[1] > before[2] > 0
    wrong = two.run("case", "delete", "one", input="two\n", check=False)
    assert wrong.returncode == 1 and "nothing was deleted" in wrong.stderr
    assert _events(two) == before

    out = two.run("case", "delete", "one", input="one\n").stdout
    assert "rows of evidence_files" in out and "disk freed" in out
    assert _events(two) == {1: 0, 2: before[2]}
    with two.db().read() as session:
        assert session.get(Case, 1) is None
        assert session.scalar(select(func.count(Job.id))) == 1  # case two's job
        [kept] = session.scalars(select(EvidenceFile)).all()
    assert kept.case_id == 2 and Path(kept.stored_path).is_file()
    assert not (two.home / "evidence" / "1").exists()
    bad = two.invoke("case", "delete", "one", "--yes")
    assert bad.returncode == 1 and "no case named 'one'" in bad.stderr
    assert "two" in two.invoke("case", "list").stdout  # what the real delete left

"""`casescope mark …`, `casescope tags` and `casescope note …` through the real command on a
real ingested sample: marks by id and by query, found again with `casescope search`; notes
added, listed, found, edited and deleted; bad input is one clear line; every change is in
the audit log under `cli`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from casescope.model.tables import AuditRecord
from tests.e2e.conftest import Cli

SAMPLE = "Lateral Movement/LM_Remote_Service02_7045.evtx"  # 3 × 7045


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory, attack_samples: Path) -> Cli:
    root = tmp_path_factory.mktemp("marks")
    cli = Cli(root / "home")
    cli.run("ingest", "--case", "m", str(attack_samples / SAMPLE))
    return cli


def _found(cli: Cli, query: str) -> list[str]:
    """The events `search` finds, run in this process (`Cli.invoke`): it reads what the real
    `mark` and `note` processes wrote."""
    proc = cli.invoke("search", "--case", "m", "--format", "jsonl", "--", query)
    assert proc.returncode == 0, proc.stderr
    return sorted(f"{e['file_id']}:{e['seq']}" for e in map(json.loads, proc.stdout.splitlines()))


def test_mark_by_query_and_by_event_then_search(case: Cli) -> None:
    done = case.run("mark", "tag", "lateral", "--case", "m", "--query", "EventID:7045")
    assert "marked 3 of 3 events" in done.stdout
    events = _found(case, "tag:lateral")
    assert len(events) == 3
    case.run("mark", "untag", "lateral", "--case", "m", "--event", events[0])
    assert _found(case, "tag:lateral") == events[1:]
    case.run("mark", "star", "--case", "m", "-e", events[1], "-e", events[2])
    assert _found(case, "is:starred") == events[1:]
    tags = case.run("tags", "--case", "m", "--format", "jsonl").stdout.splitlines()
    assert [(t["label"], t["events"]) for t in map(json.loads, tags)] == [("lateral", 2)]
    with case.db().read() as session:
        rows = session.scalars(select(AuditRecord).where(AuditRecord.actor == "cli")).all()
    tagged = [json.loads(r.detail) for r in rows if r.action.value == "event.tag"]
    assert tagged[0]["label"] == "lateral" and tagged[0]["query"] == "EventID:7045"
    assert {r.action.value for r in rows} >= {"event.tag", "event.untag", "event.star"}


def test_notes_from_the_command_line(case: Cli) -> None:
    event = _found(case, "EventID:7045")[0]
    added = case.run("note", "add", "--case", "m", "--event", event, "service made by psexec")
    note_id = added.stdout.split()[1]
    assert _found(case, "note:psexec") == [event] == _found(case, "has:note")
    listed = case.run("note", "list", "--case", "m", "--event", event, "--format", "jsonl")
    (note,) = map(json.loads, listed.stdout.splitlines())
    assert (note["author"], note["text"]) == ("cli", "service made by psexec")
    case.run("note", "edit", "--case", "m", note_id, "service made by PAExec")
    assert _found(case, "note:paexec") == [event] and _found(case, "note:psexec") == []
    case.run("note", "delete", "--case", "m", note_id)
    assert _found(case, "has:note") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("mark", "star", "--case", "m"), "give --event (one or more) or --query"),
        (("mark", "star", "--case", "m", "-e", "1:0", "-q", "x"), "give --event"),
        (("mark", "star", "--case", "m", "-e", "1:x"), "an event is FILE_ID:SEQ"),
        (("mark", "tag", " ", "--case", "m", "-e", "1:0"), "a tag needs a label"),
        (("mark", "star", "--case", "m", "-q", "is:foo"), "is: takes one of"),
        (("note", "add", "--case", "m", "-e", "1:0", " "), "a note needs some text"),
        (("note", "delete", "--case", "m", "999999"), "no note 999999"),
        (("tags", "--case", "nope"), "nope"),
    ],
)
def test_bad_input_is_one_clear_line(case: Cli, args: tuple[str, ...], message: str) -> None:
    proc = case.invoke(*args)  # in this process: the commands' own runs are real processes
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr

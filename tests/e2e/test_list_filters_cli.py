"""`casescope audit` and `casescope files` with the web pages' filters: which audit rows
(people's actions, casescope's own, pipeline steps, all), whose, a time range, times said to
be UTC; files by status, name and type, sorted. One ingest for the module."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli

SAMPLES = (
    "Lateral Movement/LM_Remote_Service02_7045.evtx",
    "Credential Access/kerberos_pwd_spray_4771.evtx",
)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, attack_samples: Path) -> Cli:
    root = tmp_path_factory.mktemp("listcli")
    folder = root / "evidence"
    folder.mkdir()
    for sample in SAMPLES:
        shutil.copy(attack_samples / sample, folder)
    (folder / "README.md").write_text("# notes, not a log\n")
    cli = Cli(root / "home")
    cli.run("ingest", "--case", "listed", str(folder))
    return cli


def _rows(cli: Cli, *args: str) -> list[dict]:
    """The JSON lines of a listing, run in this process (`Cli.invoke`): it reads the home a
    real `ingest` made; the audit table below is a real process."""
    proc = cli.invoke(*args, "--format", "jsonl")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_audit_filters_by_view_user_and_time(cli: Cli) -> None:
    steps = _rows(cli, "audit", "--view", "steps")
    assert steps and all(row["action"].startswith("step.") for row in steps)
    actions = _rows(cli, "audit", "--view", "actions")
    assert "case.create" in {row["action"] for row in actions}
    assert not [row for row in actions if row["action"].startswith(("step.", "intake.regis"))]
    everything = _rows(cli, "audit")  # every row by default, as before
    assert len(everything) >= len(steps) + len(actions) + 1
    mine = _rows(cli, "audit", "--user", "CLI")
    assert mine and all("cli" in row["actor"] for row in mine)
    assert _rows(cli, "audit", "--since", "2999-01-01") == []
    assert _rows(cli, "audit", "--until", "2000-01-01T00:00:00+02:00") == []
    assert "at (UTC)" in cli.run("audit", "--view", "actions").stdout
    bad = cli.invoke("audit", "--since", "yesterday")
    assert bad.returncode == 1 and "not an ISO 8601 time" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_files_filter_by_status_name_and_type_and_sort(cli: Cli) -> None:
    files = ["files", "--case", "listed"]
    [readme] = _rows(cli, *files, "--status", "rejected")
    assert readme["name"].endswith("README.md") and readme["status"] == "rejected"
    assert [row["id"] for row in _rows(cli, *files, "--name", "readme")] == [readme["id"]]
    assert {row["file_type"] for row in _rows(cli, *files, "--type", "evtx")} == {"evtx"}
    sizes = [row["size_bytes"] for row in _rows(cli, *files, "--sort", "size", "--desc")]
    assert len(sizes) == 3 and sizes == sorted(sizes, reverse=True)
    bad = cli.invoke(*files, "--sort", "colour")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr

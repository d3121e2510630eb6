"""Small files processed in groups give exactly what processing them one by one gives.

A worker claims the small files queued together and evaluates Sigma and IOCs once over all
their events (jobs/group.py); each file must still end with its own events, detections, IOC
hits and audit rows, identical to a run where every file is claimed alone.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from casescope.model.enums import AuditAction, FileStatus
from casescope.model.tables import AuditRecord, EvidenceFile
from tests.e2e.conftest import Cli

IOCS = ("cmd.exe", "powershell.exe", "10.0.2.17", "rundll32.exe", "svchost.exe")


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory: pytest.TempPathFactory, sigma_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("group-rules")
    shutil.copytree(sigma_dir / "rules" / "windows" / "process_creation", root / "pc")
    shutil.copytree(sigma_dir / "rules" / "windows" / "builtin" / "security", root / "security")
    return root


def _jsonl(cli: Cli, *args: str) -> list[dict]:
    """The JSON lines a reading command prints, run in this process (`Cli.invoke`): what is
    compared is what the real `ingest` processes wrote."""
    proc = cli.invoke(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def _prepared(home: Path, rules: Path) -> Path:
    """A home with `rules` imported and a case `g` with `IOCS`, before any evidence: nothing
    in it names its own path yet, so a copy of it elsewhere is the same home."""
    cli = Cli(home)
    cli.run("rules", "import", str(rules), "--name", "subset")
    cli.run("case", "create", "g")
    cli.run("ioc", "add", "--case", "g", *IOCS)
    return home


def _run(
    prepared: Path, home: Path, samples: list[Path], group_files: int, mp: pytest.MonkeyPatch
) -> dict[str, object]:
    """Ingest `samples` with Sigma and IOCs into a copy of `prepared`; everything each file
    ended with, by file name."""
    mp.setenv("CASESCOPE_GROUP_MAX_FILES", str(group_files))
    shutil.copytree(prepared, home, symlinks=True)
    cli = Cli(home)
    cli.run("ingest", "--case", "g", *map(str, samples))
    detections = _jsonl(cli, "detections", "--case", "g", "--format", "jsonl")
    hits = _jsonl(cli, "hits", "--case", "g", "--format", "jsonl")
    db = cli.db()
    with db.read() as session:
        files = {f.id: f for f in session.scalars(select(EvidenceFile))}
        steps = session.execute(select(AuditRecord.file_id, AuditRecord.action)).all()
    db.dispose()
    name = {i: Path(f.original_path).name for i, f in files.items()}
    return {
        "files": sorted((name[i], f.status, f.event_count, f.hidden) for i, f in files.items()),
        "detections": sorted(
            (Path(d["original_path"]).name, d["seq"], d["rule_uid"]) for d in detections
        ),
        "hits": sorted(
            (Path(h["original_path"]).name, h["seq"], h["ioc_value"], h["field"], h["excerpt"])
            for h in hits
        ),
        "steps": sorted((name[i], a) for i, a in steps if i in name),
        "events": len(
            _jsonl(cli, "search", "", "--case", "g", "--format", "jsonl", "--limit", "1000000")
        ),
    }


def test_groups_and_single_files_give_the_same_results(
    tmp_path: Path, rules_dir: Path, attack_samples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = sorted(attack_samples.rglob("*.evtx"))[::3]
    prepared = _prepared(tmp_path / "prepared", rules_dir)
    alone = _run(prepared, tmp_path / "alone", samples, 1, monkeypatch)
    grouped = _run(prepared, tmp_path / "grouped", samples, 64, monkeypatch)

    assert grouped == alone
    assert {status for _, status, _, _ in grouped["files"]} == {FileStatus.COMPLETED}
    assert len(grouped["detections"]) > 50 and len(grouped["hits"]) > 50
    expected_steps = {action for action in AuditAction if action.is_pipeline_step}
    for file_name, *_ in grouped["files"]:
        assert {a for n, a in grouped["steps"] if n == file_name} >= expected_steps
    assert grouped["events"] == sum(count for _, _, count, _ in grouped["files"])

"""Sigma in the ingest pipeline: import rules, ingest, detections link to the exact events."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from casescope.detect.engine import compile_rules
from casescope.detect.load import load_rules
from casescope.model.enums import FileType
from casescope.model.tables import AuditRecord
from casescope.parse import ParseReport, iter_batches
from tests.e2e.conftest import Cli


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory: pytest.TempPathFactory, sigma_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("rules")
    shutil.copytree(sigma_dir / "rules" / "windows" / "process_creation", root / "pc")
    (root / "broken.yml").write_text("title: broken\ndetection: [unclosed\n")
    return root


@pytest.fixture(scope="module")
def samples(attack_samples: Path) -> list[Path]:
    return sorted(attack_samples.rglob("*.evtx"))[::9]


def test_detections_match_the_engine(
    tmp_path_factory: pytest.TempPathFactory, rules_dir: Path, samples: list[Path]
) -> None:
    cli = Cli(tmp_path_factory.mktemp("sigma") / "home")
    proc = cli.run("rules", "import", str(rules_dir), "--name", "pc")
    assert "cannot run" in proc.stdout
    failed = cli.run("rules", "list", "--failed").stdout
    assert "broken.yml" in failed
    cli.run("ingest", "--case", "s", *map(str, samples))
    lines = cli.run("detections", "--case", "s", "--format", "jsonl").stdout.splitlines()
    got = sorted(
        (Path(d["original_path"]).name, d["seq"], d["rule_uid"]) for d in map(json.loads, lines)
    )
    ruleset = compile_rules(load_rules(rules_dir))
    expected = sorted(
        (path.name, seq, rule_id)
        for path in samples
        for batch in iter_batches(path, FileType.EVTX, ParseReport())
        for seq, rule_id in zip(*ruleset.evaluate(batch).to_pydict().values(), strict=True)
    )
    assert got == expected and len(got) > 10
    summary = cli.run("detections", "--case", "s", "--level", "high").stdout
    assert "detections by rule" in summary


def test_rules_run_on_a_case_without_reparsing(
    tmp_path_factory: pytest.TempPathFactory, rules_dir: Path, samples: list[Path]
) -> None:
    cli = Cli(tmp_path_factory.mktemp("rerun") / "home")
    cli.run("ingest", "--case", "r", *map(str, samples))  # no rules yet: no detections
    assert cli.run("detections", "--case", "r", "--format", "jsonl").stdout == ""
    cli.run("rules", "import", str(rules_dir), "--name", "pc")
    proc = cli.run("rules", "run", "--case", "r")
    assert f"queued {len(samples)} files for Sigma" in proc.stdout
    hits = cli.run("detections", "--case", "r", "--format", "jsonl").stdout.splitlines()
    assert len(hits) > 10
    with cli.db().session() as session:
        actions = session.scalars(select(AuditRecord.action)).all()
    assert actions.count("indexing") == len(samples)  # parsed once, at ingest
    assert actions.count("sigma") == 2 * len(samples)
    cli.run("rules", "run", "--case", "r")  # again: detections replaced, not doubled
    again = cli.run("detections", "--case", "r", "--format", "jsonl").stdout.splitlines()
    assert len(again) == len(hits)

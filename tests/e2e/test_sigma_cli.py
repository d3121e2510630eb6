"""Sigma in the ingest pipeline: import rules, ingest, detections link to the exact events."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from casescope.detect.engine import compile_rules
from casescope.detect.load import load_rules
from casescope.model.enums import AuditAction, FileType
from casescope.model.tables import AuditRecord, Detection, Rule
from casescope.parse.files import iter_batches
from casescope.parse.report import ParseReport
from tests.e2e.conftest import Cli, SharedHome


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory: pytest.TempPathFactory, sigma_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("rules")
    shutil.copytree(sigma_dir / "rules" / "windows" / "process_creation", root / "pc")
    (root / "broken.yml").write_text("title: broken\ndetection: [unclosed\n")
    return root


@pytest.fixture(scope="module")
def samples(attack_samples: Path) -> list[Path]:
    return sorted(attack_samples.rglob("*.evtx"))[::9]


@dataclass
class Ingested:
    """A home with `rules_dir` imported as `pc`, then `samples` ingested into case `s`."""

    home: SharedHome
    imported: str  # what `rules import` printed


@pytest.fixture(scope="module")
def ingested(
    tmp_path_factory: pytest.TempPathFactory, rules_dir: Path, samples: list[Path]
) -> Ingested:
    cli = Cli(tmp_path_factory.mktemp("sigma") / "home")
    imported = cli.run("rules", "import", str(rules_dir), "--name", "pc").stdout
    cli.run("ingest", "--case", "s", *map(str, samples))
    return Ingested(SharedHome(cli).seal(), imported)


def test_detections_match_the_engine(
    ingested: Ingested, rules_dir: Path, samples: list[Path]
) -> None:
    cli = ingested.home.fresh()
    assert "cannot run" in ingested.imported
    failed = cli.run("rules", "list", "--failed").stdout
    assert "broken.yml" in failed
    lines = _detections(cli, "s")
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

    detected = {(d["file_id"], d["seq"]) for d in map(json.loads, lines)}
    assert _searched(cli, "--detections") == detected
    high = _detections(cli, "s", "--level", "high")
    high_events = {(d["file_id"], d["seq"]) for d in map(json.loads, high)}
    assert _searched(cli, "--level", "high") == high_events < detected
    assert _searched(cli, "--rule", "x' OR 1=1 --") == set()


def _detections(cli: Cli, case: str, *options: str) -> list[str]:
    """The JSON lines of `casescope detections` for `case`, run in this process
    (`Cli.invoke`): it reads what real `ingest` and `rules` processes wrote (the summary
    table of the first test is a real process)."""
    proc = cli.invoke("detections", "--case", case, "--format", "jsonl", *options)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.splitlines()


def _searched(cli: Cli, *options: str) -> set[tuple[int, int]]:
    """(file id, seq) of every event `casescope search` returns with these options, run in
    this process (`Cli.invoke`): it reads what the real ingest wrote."""
    proc = cli.invoke(
        "search", "", "--case", "s", "--format", "jsonl", "--limit", "1000000", *options
    )
    assert proc.returncode == 0, proc.stderr
    return {(e["file_id"], e["seq"]) for e in map(json.loads, proc.stdout.splitlines())}


def test_rules_run_on_a_case_without_reparsing(
    tmp_path_factory: pytest.TempPathFactory, rules_dir: Path, samples: list[Path]
) -> None:
    cli = Cli(tmp_path_factory.mktemp("rerun") / "home")
    cli.run("ingest", "--case", "r", *map(str, samples))  # no rules yet: no detections
    assert _detections(cli, "r") == []
    cli.run("rules", "import", str(rules_dir), "--name", "pc")
    proc = cli.run("rules", "run", "--case", "r")
    assert f"queued {len(samples)} files for Sigma" in proc.stdout
    hits = _detections(cli, "r")
    assert len(hits) > 10
    with cli.db().session() as session:
        actions = session.scalars(select(AuditRecord.action)).all()
    assert actions.count(AuditAction.STEP_INDEXING) == len(samples)  # parsed once, at ingest
    assert actions.count(AuditAction.STEP_SIGMA) == 2 * len(samples)
    cli.run("rules", "run", "--case", "r")  # again: detections replaced, not doubled
    again = _detections(cli, "r")
    assert len(again) == len(hits)


def _sigma_rows(cli: Cli) -> dict[int, str]:
    """Detection row id -> rule uid, straight from the metadata DB."""
    with cli.db().session() as session:
        rows = session.execute(
            select(Detection.id, Rule.rule_uid).join(Rule, Rule.id == Detection.rule_id)
        )
        return {row_id: uid for row_id, uid in rows}


def _sigma_events_since(cli: Cli, audit_id: int) -> list[int]:
    with cli.db().session() as session:
        query = select(AuditRecord.events).where(
            AuditRecord.action == AuditAction.STEP_SIGMA, AuditRecord.id > audit_id
        )
        return list(session.scalars(query))


def _last_audit_id(cli: Cli) -> int:
    with cli.db().session() as session:
        return session.scalar(select(func.max(AuditRecord.id))) or 0


def test_rules_run_evaluates_only_changed_rules(
    tmp_path_factory: pytest.TempPathFactory, rules_dir: Path, ingested: Ingested
) -> None:
    rules = tmp_path_factory.mktemp("editable") / "pc"
    shutil.copytree(rules_dir, rules)  # the same rules: an import keys them by relative path
    cli = ingested.home.fresh()
    before = _sigma_rows(cli)
    uid, count = Counter(before.values()).most_common(1)[0]
    assert count > 1

    mark = _last_audit_id(cli)
    cli.run("rules", "run", "--case", "s")  # nothing changed: nothing evaluated or rewritten
    assert _sigma_rows(cli) == before
    assert sum(_sigma_events_since(cli, mark)) == 0

    edited = next(p for p in rules.rglob("*.yml") if f"id: {uid}" in p.read_text())
    edited.write_text(edited.read_text() + "\n# edited by the analyst\n")
    cli.run("rules", "import", str(rules), "--name", "pc")
    mark = _last_audit_id(cli)
    cli.run("rules", "run", "--case", "s")
    after = _sigma_rows(cli)
    kept = {row: rule for row, rule in before.items() if rule != uid}
    assert {row: rule for row, rule in after.items() if rule != uid} == kept  # untouched rows
    assert Counter(after.values())[uid] == count and not set(after) & (set(before) - set(kept))
    assert sum(_sigma_events_since(cli, mark)) == count  # only the edited rule re-ran


CORRELATION = """title: Same user runs a flagged tool three times
id: 6b1f0d5e-0000-4000-8000-00000000c0c0
status: experimental
level: critical
correlation:
  type: event_count
  rules: [502b42de-4306-40b4-9596-6f590c81f073]
  group-by: [User]
  timespan: 3650d
  condition: {gte: 3}
"""


def test_correlation_rules_run_over_the_case(
    tmp_path_factory: pytest.TempPathFactory, rules_dir: Path, samples: list[Path]
) -> None:
    # the correlation's base rule and the correlation alone: the other rules of `rules_dir`
    # (a thousand, compiled and evaluated on every file) have no part in what is checked
    rules = tmp_path_factory.mktemp("corr") / "pc"
    rules.mkdir()
    base = rules_dir / "pc" / "proc_creation_win_susp_local_system_owner_account_discovery.yml"
    assert "id: 502b42de-4306-40b4-9596-6f590c81f073" in base.read_text()
    shutil.copy(base, rules)
    (rules / "correlation.yml").write_text(CORRELATION)
    cli = Cli(tmp_path_factory.mktemp("correlate") / "home")
    cli.run("rules", "import", str(rules), "--name", "pc")
    cli.run("ingest", "--case", "k", *map(str, samples))
    detections = [json.loads(line) for line in _detections(cli, "k")]
    base = [d for d in detections if d["rule_uid"] == "502b42de-4306-40b4-9596-6f590c81f073"]
    hits = [d for d in detections if d["rule_uid"] == "6b1f0d5e-0000-4000-8000-00000000c0c0"]
    assert len(base) >= 3 and len(hits) == 1 and hits[0]["level"] == "critical"
    with cli.db().session() as session:
        stored = session.scalars(select(Detection.fields).where(Detection.seq == hits[0]["seq"]))
        summary = next(json.loads(f) for f in stored if f and '"group"' in f)
    assert summary["group"] == {"User": "IEWIN7\\IEUser"} and summary["count"] == 3
    assert (hits[0]["file_id"], hits[0]["seq"]) in {(d["file_id"], d["seq"]) for d in base}
    placed_on = {(d["file_id"], d["seq"]): d["computer"] for d in base}
    assert hits[0]["computer"] == placed_on[(hits[0]["file_id"], hits[0]["seq"])] != ""
    cli.run("rules", "run", "--case", "k")  # re-run: the correlation hit is replaced
    again = _detections(cli, "k")
    assert len(again) == len(detections)


def test_an_unknown_level_is_refused_by_name(cli: Cli) -> None:
    # what the commands say to a bad option is the point, not their processes: in this one
    assert cli.invoke("case", "create", "s").returncode == 0
    bad = cli.invoke("detections", "--case", "s", "--level", "foo")
    assert bad.returncode == 2 and "'foo' is not one of" in bad.stderr
    bad = cli.invoke("search", "--case", "s", "--level", "highest", "x")
    assert bad.returncode == 2 and "'highest' is not one of" in bad.stderr

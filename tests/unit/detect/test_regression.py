"""SigmaHQ's regression data: every positive sample must fire its rule.

The whole snapshot is loaded and compiled; each case's EVTX is evaluated against its own
compiled rule (rules are independent, so this checks the same matcher far faster than
running every rule on every sample).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from casescope.detect.engine import CompiledRuleSet, compile_rules
from casescope.detect.load import RuleLoad, load_rules
from casescope.model.enums import FileType
from casescope.parse import ParseReport, iter_batches

RULE_DIRS = (
    "rules",
    "rules-emerging-threats",
    "rules-threat-hunting",
    "rules-dfir",
    "rules-compliance",
)


@pytest.fixture(scope="session")
def snapshot(sigma_dir: Path) -> CompiledRuleSet:
    load = RuleLoad()
    for name in RULE_DIRS:
        if (sigma_dir / name).is_dir():
            part = load_rules(sigma_dir / name)
            load.rules += part.rules
            load.failures += part.failures
    return compile_rules(load)


def _cases(sigma_dir: Path) -> list[tuple[str, Path]]:
    cases = []
    for info in sorted((sigma_dir / "regression_data").rglob("info.yml")):
        meta = yaml.safe_load(info.read_text())
        rule_id = meta["rule_metadata"][0]["id"]
        for test in meta["regression_tests_info"]:
            path = sigma_dir / test["path"]
            cases.append((rule_id, path if path.exists() else info.parent / path.name))
    return cases


def test_every_regression_sample_fires_its_rule(snapshot: CompiledRuleSet, sigma_dir: Path) -> None:
    by_id = {rule.id: rule for rule in snapshot.rules}
    cases = _cases(sigma_dir)
    assert len(cases) >= 100
    missed = []
    for rule_id, evtx in cases:
        rule = by_id.get(rule_id)
        if rule is None:
            missed.append((rule_id, "rule did not compile"))
            continue
        single = CompiledRuleSet(rules=[rule], atoms=snapshot.atoms)
        fired = any(
            single.evaluate(batch).num_rows
            for batch in iter_batches(evtx, FileType.EVTX, ParseReport())
        )
        if not fired:
            missed.append((rule_id, evtx.name))
    assert not missed, f"{len(missed)}/{len(cases)} regression cases missed: {missed[:10]}"


def test_windows_snapshot_compiles(snapshot: CompiledRuleSet) -> None:
    windows_failures = [f for f in snapshot.failures if "not a Windows rule" not in f.reason]
    assert len(snapshot.rules) > 2500
    assert len(windows_failures) < 20, windows_failures[:5]

"""SigmaHQ's regression data: every positive sample must fire its rule.

The whole snapshot (rules, emerging threats, threat hunting, DFIR, compliance) is active,
as in production: each case's EVTX is parsed with the real parser and evaluated against
every compiled rule, and the case's rule must be among the hits.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from casescope.detect.engine import CompiledRuleSet
from casescope.model.enums import FileType
from casescope.parse.files import iter_batches
from casescope.parse.report import ParseReport


def regression_cases(sigma_dir: Path) -> list[tuple[str, Path]]:
    """(rule id, EVTX path) of every positive regression test in the snapshot."""
    cases = []
    for info in sorted((sigma_dir / "regression_data").rglob("info.yml")):
        meta = yaml.safe_load(info.read_text())
        rule_id = meta["rule_metadata"][0]["id"]
        for test in meta["regression_tests_info"]:
            path = sigma_dir / test["path"]
            cases.append((rule_id, path if path.exists() else info.parent / path.name))
    return cases


def test_every_regression_sample_fires_its_rule(snapshot: CompiledRuleSet, sigma_dir: Path) -> None:
    cases = regression_cases(sigma_dir)
    assert len(cases) >= 100
    compiled = {rule.id for rule in snapshot.rules}
    missed = []
    for rule_id, evtx in cases:
        hits: set[str] = set()
        for batch in iter_batches(evtx, FileType.EVTX, ParseReport()):
            hits.update(snapshot.evaluate(batch).column("rule_id").to_pylist())
        if rule_id not in hits:
            why = "fired nothing" if rule_id in compiled else "did not compile"
            missed.append((rule_id, evtx.name, why))
    assert not missed, f"{len(missed)}/{len(cases)} regression cases missed: {missed}"


def test_the_snapshot_compiles(snapshot: CompiledRuleSet) -> None:
    windows = [f for f in snapshot.failures if "Windows rules only" not in f.reason]
    assert len(snapshot.rules) > 2800
    assert len(windows) <= 5, windows
    assert all(f.reason for f in snapshot.failures)

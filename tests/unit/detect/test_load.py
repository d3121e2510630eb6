"""Loading rules: folders and zips, every failure kept with its reason, correlations kept."""

from __future__ import annotations

import zipfile
from pathlib import Path

from casescope.detect.engine import compile_rules
from casescope.detect.load import load_rules
from tests.unit.detect.support import rule_text

GOOD = rule_text("  sel: {Image|endswith: '\\a.exe'}\n  condition: sel")
OTHER = rule_text(
    "  sel: {Image|endswith: '\\b.exe'}\n  condition: sel",
    id="00000000-0000-0000-0000-000000000002",
)
TWO = rule_text("  sel: {Image|endswith: '\\a.exe'}\n  other: {User: x}\n  condition: sel")
CORRELATION = """\
title: many a.exe
id: 00000000-0000-0000-0000-0000000000c1
correlation:
  type: event_count
  rules: [00000000-0000-0000-0000-000000000001]
  group-by: [Computer]
  timespan: 5m
  condition: {gte: 3}
level: high
"""


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_folder_load_keeps_every_failure_with_its_reason(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "a/good.yml": GOOD,
            "a/broken.yml": "title: [unclosed",
            "a/bad_modifier.yml": GOOD.replace("endswith", "endswithh"),
            "a/no_condition.yml": TWO.replace("  condition: sel\n", ""),
            "b/notes.yaml": "just: some config\n",
            "b/list.yml": "- 1\n- 2\n",
            "c/corr.yml": CORRELATION,
            "c/readme.txt": "not yaml at all",
        },
    )
    load = load_rules(root)
    assert [r.path for r in load.rules] == ["a/good.yml"]
    reasons = {f.path: f.reason for f in load.failures}
    assert set(reasons) == {
        "a/broken.yml",
        "a/bad_modifier.yml",
        "a/no_condition.yml",
        "b/list.yml",
    }
    assert "not valid YAML" in reasons["a/broken.yml"]
    assert "endswithh" in reasons["a/bad_modifier.yml"]
    assert load.ignored == ["b/notes.yaml"]
    (correlation,) = load.correlations
    assert correlation.rule is not None and not correlation.error
    assert correlation.definition["correlation"]["type"] == "event_count"


def test_zip_and_several_sources_give_prefixed_unique_paths(tmp_path: Path) -> None:
    archive = tmp_path / "rules.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("windows/good.yml", GOOD)
    folder = _tree(tmp_path / "extra", {"good.yml": OTHER})
    assert [r.path for r in load_rules(archive).rules] == ["windows/good.yml"]
    paths = [r.path for r in load_rules([archive, folder]).rules]
    assert paths == ["rules.zip/windows/good.yml", "extra/good.yml"]


def test_compile_keeps_unsupported_and_duplicate_rules_as_failures(tmp_path: Path) -> None:
    linux = GOOD.replace("product: windows", "product: linux").replace(
        "-000000000001", "-00000000000f"
    )
    expand = rule_text(
        "  sel: {Image|expand: '%paths%'}\n  condition: sel",
        id="00000000-0000-0000-0000-0000000000e1",
    )
    root = _tree(tmp_path, {"a.yml": GOOD, "b.yml": GOOD, "l.yml": linux, "x.yml": expand})
    compiled = compile_rules(load_rules(root))
    assert [r.path for r in compiled.rules] == ["a.yml"]
    reasons = {f.path: f.reason for f in compiled.failed}
    assert "duplicate rule id" in reasons["b.yml"]
    assert "'linux' is not supported" in reasons["l.yml"]
    assert reasons["x.yml"] == "needs placeholder values: %paths%"


def test_rule_metadata(tmp_path: Path) -> None:
    (rule,) = compile_rules(load_rules(_tree(tmp_path, {"w/a.yml": GOOD}))).rules
    assert (rule.id, rule.title, rule.level, rule.status) == (
        "00000000-0000-0000-0000-000000000001",
        "test rule",
        "high",
        "test",
    )
    assert rule.attack == ["attack.execution", "attack.t1059.001"]
    assert rule.logsource == {"product": "windows", "category": "process_creation"}
    assert rule.variants == ("sysmon", "security")
    assert rule.event_ids == {1, 4688}
    assert rule.channels == {"microsoft-windows-sysmon/operational", "security"}
    assert len(rule.sha256) == 64 and len(rule.content_hash) == 32


def test_content_hash_changes_with_the_rule_only(tmp_path: Path) -> None:
    first = compile_rules(load_rules(_tree(tmp_path / "1", {"a.yml": GOOD, "b.yml": OTHER})))
    changed = OTHER.replace("b.exe", "c.exe")
    second = compile_rules(load_rules(_tree(tmp_path / "2", {"a.yml": GOOD, "b.yml": changed})))
    before = {r.id: r.content_hash for r in first.rules}
    after = {r.id: r.content_hash for r in second.rules}
    assert [rule_id for rule_id in before if before[rule_id] != after[rule_id]] == [
        "00000000-0000-0000-0000-000000000002"
    ]

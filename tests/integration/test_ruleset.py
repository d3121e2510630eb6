"""Rule sets in the metadata DB: import, failures kept, enable/disable, the active set."""

from __future__ import annotations

from pathlib import Path

import pytest

from casescope.config import Settings
from casescope.detect.engine import CompiledRuleSet
from casescope.detect.load import RuleLoad
from casescope.detect.placeholders import Placeholders
from casescope.errors import CasescopeError
from casescope.model.db import Database
from casescope.store import rulesets as ruleset
from casescope.store.rulesets import (
    RuleSelector,
    import_rules,
    list_rules,
    load_active,
    set_enabled,
)
from tests.unit.detect.support import make_batch

RULE = """title: {title}
id: 00000000-0000-0000-0000-00000000000{n}
status: {status}
level: {level}
logsource: {{category: process_creation, product: windows}}
detection:
  sel: {{CommandLine|contains: '{word}'}}
  condition: sel
"""


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    root = tmp_path / "rules"
    (root / "proc").mkdir(parents=True)
    (root / "other").mkdir()
    specs = [
        ("one", 1, "stable", "high", "whoami"),
        ("two", 2, "test", "low", "net user"),
        ("three", 3, "experimental", "high", "mimikatz"),
    ]
    for title, n, status, level, word in specs:
        folder = root / ("other" if n == 3 else "proc")
        (folder / f"{title}.yml").write_text(
            RULE.format(title=title, n=n, status=status, level=level, word=word)
        )
    (root / "bad.yml").write_text("title: x\ndetection: {sel: {a: 1}, condition: nope and}\n")
    return root


def active_titles(settings: Settings) -> set[str]:
    active = load_active(settings, None)
    assert active is not None
    return {rule.title for rule in active.ruleset.rules}


def test_import_keeps_failures_and_activates(
    db: Database, settings: Settings, rules_dir: Path
) -> None:
    report = import_rules(db, settings, rules_dir, "t")
    assert (report.rules, report.failed) == (3, 1)
    failed = list_rules(db, failed=True)
    assert [r.path for r in failed] == ["bad.yml"] and failed[0].error
    assert active_titles(settings) == {"one", "two", "three"}


def test_enable_disable_by_level_status_path_and_id(
    db: Database, settings: Settings, rules_dir: Path
) -> None:
    import_rules(db, settings, rules_dir, "t")
    assert set_enabled(db, settings, RuleSelector(levels=("high",)), False) == 2
    assert active_titles(settings) == {"two"}
    assert set_enabled(db, settings, RuleSelector(path_glob="proc/*"), True) == 1
    assert active_titles(settings) == {"one", "two"}
    assert set_enabled(db, settings, RuleSelector(statuses=("test",)), False) == 1
    uid = "00000000-0000-0000-0000-000000000003"
    assert set_enabled(db, settings, RuleSelector(rule_uids=(uid,)), True) == 1
    assert active_titles(settings) == {"one", "three"}
    with pytest.raises(CasescopeError):
        set_enabled(db, settings, RuleSelector(), False)


def test_reimport_replaces_and_cache_is_reused(
    db: Database, settings: Settings, rules_dir: Path
) -> None:
    import_rules(db, settings, rules_dir, "t")
    first = load_active(settings, None)
    assert load_active(settings, first) is first  # unchanged set: nothing reloaded
    (rules_dir / "proc" / "two.yml").unlink()
    import_rules(db, settings, rules_dir, "t")
    assert active_titles(settings) == {"one", "three"}
    assert len(list_rules(db)) == 3  # two rules and the broken file


def _counting_compiles(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count `compile_rules` calls made by `store/rulesets.py` (the real compile still runs)."""
    calls: list[int] = []
    real = ruleset.compile_rules

    def counted(load: RuleLoad, placeholders: Placeholders | None = None) -> CompiledRuleSet:
        calls.append(len(load.rules))
        return real(load, placeholders)

    monkeypatch.setattr(ruleset, "compile_rules", counted)
    return calls


def test_import_compiles_once_and_equals_a_compile_from_the_db(
    db: Database, settings: Settings, rules_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _counting_compiles(monkeypatch)
    import_rules(db, settings, rules_dir, "t")
    assert calls == [3]  # the import's compile is reused for the active set
    active = load_active(settings, None)
    assert active is not None
    from_rows = ruleset._compile_rows(ruleset._active_rows(db), {})
    manifest = {rule.id: rule.content_hash for rule in from_rows.rules}
    assert active.manifest == manifest
    batch = make_batch([{"EventID": 1, "CommandLine": f"x {w} y"} for w in ("whoami", "mimikatz")])
    assert active.ruleset.evaluate(batch).equals(from_rows.evaluate(batch))


def test_a_second_source_is_compiled_with_the_first(
    db: Database,
    settings: Settings,
    rules_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import_rules(db, settings, rules_dir, "t")
    other = tmp_path / "more"
    other.mkdir()
    (other / "four.yml").write_text(
        RULE.format(title="four", n=4, status="stable", level="low", word="certutil")
    )
    calls = _counting_compiles(monkeypatch)
    import_rules(db, settings, other, "more")
    assert calls == [1, 4]  # the import, then the active set of both sources
    assert active_titles(settings) == {"one", "two", "three", "four"}


TAGGED = """title: {title}
id: 00000000-0000-0000-0000-00000000001{n}
level: medium
tags: [{tags}]
logsource: {{category: process_creation, product: windows}}
detection:
  sel: {{CommandLine|contains: '{title}'}}
  condition: sel
"""


def test_enable_disable_by_tag_within_a_rule_set(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """A tag selects rules carrying it (any of several, `*` as a wildcard, any case); a rule
    set narrows any selection to its own rules; a set alone selects nothing."""
    for source in ("a", "b"):
        root = tmp_path / source
        root.mkdir()
        for n, (title, tags) in enumerate(
            [("ps", "attack.t1059.001 attack.execution"), ("dump", "attack.T1003")]
        ):
            (root / f"{title}.yml").write_text(TAGGED.format(title=title, n=n, tags=tags))
        import_rules(db, settings, root, source)
    off = RuleSelector(tags=("attack.t1059*",), sources=("a",))
    assert set_enabled(db, settings, off, False) == 1
    assert set_enabled(db, settings, RuleSelector(tags=("attack.t1003", "nope")), False) == 2
    assert sorted((r.source, r.title) for r in list_rules(db) if r.enabled) == [("b", "ps")]
    assert set_enabled(db, settings, RuleSelector(tags=("attack.t1059",)), True) == 0  # exact
    assert set_enabled(db, settings, RuleSelector(tags=("attack_t1059.001",)), True) == 0
    assert set_enabled(db, settings, RuleSelector(tags=("ATTACK.EXECUTION",)), True) == 1
    with pytest.raises(CasescopeError, match="--tag"):
        set_enabled(db, settings, RuleSelector(sources=("a",)), False)

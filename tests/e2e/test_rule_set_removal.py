"""Rules leaving a deployment through the CLI, on a real ingest with real hits: a re-import
of a set that no longer holds a rule, and `rules delete`. The rule's hits go with it, in
every case; other rules' hits and other sets stay; the audit log says how many went."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from casescope.model.enums import AuditAction
from casescope.model.tables import AuditRecord, Detection, Rule
from tests.e2e.conftest import Cli, SharedHome

SAMPLE = "AutomatedTestingTools/panache_sysmon_vs_EDRTestingScript.evtx"
RULE = """\
title: {title}
id: {uid}
status: test
level: {level}
logsource: {{product: windows, category: process_creation}}
detection:
  sel: {{Image|endswith: '{ending}'}}
  condition: sel
"""
ANY_EXE = RULE.format(
    title="any exe", uid="11111111-1111-4111-8111-111111111111", level="low", ending=".exe"
)
CMD = RULE.format(
    title="cmd started",
    uid="22222222-2222-4222-8222-222222222222",
    level="medium",
    ending="\\cmd.exe",
)


def _folder(root: Path, **rules: str) -> Path:
    root.mkdir(parents=True)
    for name, text in rules.items():
        (root / f"{name}.yml").write_text(text)
    return root


def _hits(cli: Cli) -> dict[tuple[str, str], int]:
    """Detections per (rule set, rule title), every case."""
    with cli.db().read() as session:
        rows = session.execute(
            select(Rule.source, Rule.title, func.count())
            .join(Detection, Detection.rule_id == Rule.id)
            .group_by(Rule.source, Rule.title)
        )
        return {(source, title): count for source, title, count in rows}


def _detections(cli: Cli) -> int:
    with cli.db().read() as session:
        return session.scalar(select(func.count()).select_from(Detection)) or 0


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, attack_samples: Path) -> SharedHome:
    """Set `mine` (any exe, cmd) and set `other` (any exe) imported, one Sysmon log ingested
    into two cases: every rule has hits in both."""
    root = tmp_path_factory.mktemp("removal")
    cli = Cli(root / "home")
    cli.run("rules", "import", str(_folder(root / "mine", a=ANY_EXE, b=CMD)), "--name", "mine")
    cli.run("rules", "import", str(_folder(root / "other", a=ANY_EXE)), "--name", "other")
    for case in ("one", "two"):
        cli.run("ingest", "--case", case, str(attack_samples / SAMPLE))
    return SharedHome(cli).seal()


@pytest.fixture
def ingested(shared: SharedHome) -> Cli:
    return shared.fresh()


def test_a_reimport_without_a_rule_removes_it_with_its_hits(ingested: Cli, tmp_path: Path) -> None:
    before = _hits(ingested)
    assert before[("mine", "any exe")] > 0 and before[("mine", "cmd started")] > 0
    out = ingested.run("rules", "import", str(_folder(tmp_path / "v2", b=CMD)), "--name", "mine")
    gone = before[("mine", "any exe")]
    assert f"no longer in the set: 1 rule removed with {gone:,} hits in 2 cases" in out.stdout
    after = _hits(ingested)
    assert after == {k: v for k, v in before.items() if k != ("mine", "any exe")}
    with ingested.db().read() as session:
        detail = session.scalar(
            select(AuditRecord.detail).where(AuditRecord.action == AuditAction.RULES_IMPORT)
            .order_by(AuditRecord.id.desc()).limit(1)
        )  # fmt: skip
    assert detail and f"1 rule removed with {gone:,} hits in 2 cases" in detail


def test_rules_delete_asks_for_the_name_then_removes_the_set_and_its_hits(
    ingested: Cli,
) -> None:
    before = _hits(ingested)
    mine = before[("mine", "any exe")] + before[("mine", "cmd started")]
    refused = ingested.run("rules", "delete", "mine", input="min\n", check=False)
    assert refused.returncode == 1 and "nothing was deleted" in refused.stderr
    assert f"2 rules to remove with {mine:,} hits in 2 cases" in refused.stdout
    assert _hits(ingested) == before

    out = ingested.run("rules", "delete", "mine", input="mine\n")
    assert f"rule set mine: 2 rules removed with {mine:,} hits in 2 cases" in out.stdout
    assert _hits(ingested) == {("other", "any exe"): before[("other", "any exe")]}
    # what the real deletes left, read in this process (`Cli.invoke`), and a refusal
    assert "mine" not in ingested.invoke("rules", "sets").stdout
    unknown = ingested.invoke("rules", "delete", "mine", "--yes")
    assert unknown.returncode == 1 and "no rule set is named 'mine'" in unknown.stderr
    audit = ingested.invoke("audit", "--action", "rules.delete").stdout
    assert "mine: 2 rules removed" in audit

    ingested.run("rules", "run", "--case", "one")  # the active set no longer has them
    assert _detections(ingested) == before[("other", "any exe")]

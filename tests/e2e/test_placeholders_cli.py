"""`|expand` placeholders from the CLI: a rule waits for its values, then runs, and a change
of values re-evaluates only the rules that use them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli
from tests.e2e.test_sigma_cli import _last_audit_id, _sigma_events_since, _sigma_rows

EXPAND_ID = "6b1f0d5e-0000-4000-8000-0000000e0001"
PLAIN_ID = "6b1f0d5e-0000-4000-8000-0000000e0002"
EXPAND = f"""title: Process started on a watched host
id: {EXPAND_ID}
status: experimental
level: medium
logsource: {{product: windows, category: process_creation}}
detection:
  selection:
    Computer|expand: '%watched_hosts%'
  condition: selection
"""
PLAIN = f"""title: Any process started
id: {PLAIN_ID}
status: experimental
level: low
logsource: {{product: windows, category: process_creation}}
detection:
  selection:
    Image|endswith: '.exe'
  condition: selection
"""


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    folder = tmp_path / "watch"
    folder.mkdir()
    (folder / "expand.yml").write_text(EXPAND)
    (folder / "plain.yml").write_text(PLAIN)
    return folder


def _counts(cli: Cli) -> Counter[str]:
    return Counter(_sigma_rows(cli).values())


def _listed(cli: Cli, *args: str) -> str:
    """What `rules ARGS` lists, run in this process (`Cli.invoke`): the placeholder and rule
    changes it reads are made by real processes (and listed by one in the next test)."""
    proc = cli.invoke("rules", *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_placeholder_values_bring_a_rule_in_and_out(
    tmp_path_factory: pytest.TempPathFactory, rules: Path, attack_samples: Path
) -> None:
    # 16 files: Sysmon process starts on IEWIN7, on MSEDGEWIN10 and on two hosts that no
    # value names, and files with none (what the rules select among is all there)
    samples = sorted(attack_samples.rglob("*.evtx"))[::18]
    cli = Cli(tmp_path_factory.mktemp("placeholders") / "home")
    assert "1 cannot run" in cli.run("rules", "import", str(rules), "--name", "w").stdout
    failed = _listed(cli, "list", "--failed")
    assert "needs placeholder values: %watched_hosts%" in failed
    cli.run("ingest", "--case", "p", *map(str, samples))
    before = _sigma_rows(cli)
    assert set(before.values()) == {PLAIN_ID}

    cli.run("rules", "placeholders", "set", "watched_hosts", "IEWIN7")
    assert "watched_hosts" not in _listed(cli, "list", "--failed")
    assert "IEWIN7" in _listed(cli, "placeholders", "list")
    mark = _last_audit_id(cli)
    cli.run("rules", "run", "--case", "p")
    after = _sigma_rows(cli)
    assert {row: uid for row, uid in after.items() if uid == PLAIN_ID} == before  # untouched
    one_host = _counts(cli)[EXPAND_ID]
    assert one_host > 0 and sum(_sigma_events_since(cli, mark)) == one_host  # only it ran

    cli.run("rules", "placeholders", "set", "watched_hosts", "iewin7, MSEDGEWIN10")
    mark = _last_audit_id(cli)
    cli.run("rules", "run", "--case", "p")
    two_hosts = _counts(cli)[EXPAND_ID]
    assert two_hosts > one_host and sum(_sigma_events_since(cli, mark)) == two_hosts
    assert {r: u for r, u in _sigma_rows(cli).items() if u == PLAIN_ID} == before

    cli.run("rules", "placeholders", "unset", "%watched_hosts%")
    assert "needs placeholder values" in _listed(cli, "list", "--failed")
    cli.run("rules", "run", "--case", "p")
    assert _sigma_rows(cli) == before


def test_values_from_a_file_on_import_and_bad_input(
    tmp_path_factory: pytest.TempPathFactory, rules: Path
) -> None:
    cli = Cli(tmp_path_factory.mktemp("placeholder-file") / "home")
    values = rules.parent / "values.yml"
    values.write_text("watched_hosts: [DC01, DC02]\n")
    proc = cli.run("rules", "import", str(rules), "--name", "w", "--placeholders", str(values))
    assert "0 cannot run" in proc.stdout
    # the values the real import stored, and the refusals, in this process (`Cli.invoke`)
    assert "DC01, DC02" in _listed(cli, "placeholders", "list")
    bad = cli.invoke("rules", "placeholders", "set", "no spaces", "x")
    assert bad.returncode == 1 and "is not a placeholder name" in bad.stderr
    empty = cli.invoke("rules", "placeholders", "set", "watched_hosts", " , ")
    assert empty.returncode == 1 and "at least one value" in empty.stderr
    values.write_text("- not a mapping\n")
    wrong = cli.invoke("rules", "import", str(rules), "--placeholders", str(values))
    assert wrong.returncode == 1 and "must map placeholder names" in wrong.stderr

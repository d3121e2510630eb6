"""`casescope rules sets` and enable/disable by tag within a rule set, as a user runs them."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Cli

RULE = """title: {title}
id: 00000000-0000-0000-0000-00000000002{n}
level: high
tags: [{tag}]
logsource: {{category: process_creation, product: windows}}
detection:
  sel: {{CommandLine|contains: '{title}'}}
  condition: sel
"""


def cells(cli: Cli) -> list[str]:
    """The first four cells of the `demo` row of `rules sets`."""
    row = next(line for line in cli.run("rules", "sets").stdout.splitlines() if "demo" in line)
    return [cell.strip() for cell in row.split("│")][1:5]


def test_sets_and_toggle_by_tag(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "demo"
    root.mkdir()
    for n, (title, tag) in enumerate([("ps", "attack.t1059.001"), ("dump", "attack.t1003")]):
        (root / f"{title}.yml").write_text(RULE.format(title=title, n=n, tag=tag))
    (root / "broken.yml").write_text("title: broken\ndetection: [unclosed\n")
    cli.run("rules", "import", str(root))
    assert cells(cli) == ["demo", "3", "2", "1"]  # rows, running, cannot run
    done = cli.run("rules", "disable", "--tag", "attack.t1059*", "--source", "demo").stdout
    assert "1 rule disabled" in done
    alone = cli.run("rules", "enable", "--source", "demo", check=False)
    assert alone.returncode == 1 and "--tag" in alone.stdout + alone.stderr
    assert cells(cli) == ["demo", "3", "1", "1"]

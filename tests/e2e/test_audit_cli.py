"""`casescope audit` with the audit page's filters: which rows (people's actions, casescope's
own, pipeline steps, all), whose, and a time range; times said to be UTC."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import Cli

SAMPLE = "Lateral Movement/LM_Remote_Service02_7045.evtx"


def _rows(cli: Cli, *args: str) -> list[dict]:
    out = cli.run("audit", *args, "--format", "jsonl").stdout
    return [json.loads(line) for line in out.splitlines()]


def test_audit_filters_by_view_user_and_time(cli: Cli, attack_samples: Path) -> None:
    cli.run("ingest", "--case", "audited", str(attack_samples / SAMPLE))
    steps = _rows(cli, "--view", "steps")
    assert steps and all(row["action"].startswith("step.") for row in steps)
    actions = _rows(cli, "--view", "actions")
    assert "case.create" in {row["action"] for row in actions}
    assert not [row for row in actions if row["action"].startswith(("step.", "intake.registered"))]
    everything = _rows(cli)  # every row by default, as before
    assert len(everything) >= len(steps) + len(actions) + 1
    mine = _rows(cli, "--user", "CLI")
    assert mine and all("cli" in row["actor"] for row in mine)
    assert _rows(cli, "--since", "2999-01-01") == []
    assert _rows(cli, "--until", "2000-01-01T00:00:00+02:00") == []
    assert "at (UTC)" in cli.run("audit", "--view", "actions").stdout
    bad = cli.run("audit", "--since", "yesterday", check=False)
    assert bad.returncode == 1 and "not an ISO 8601 time" in bad.stderr
    assert "Traceback" not in bad.stderr

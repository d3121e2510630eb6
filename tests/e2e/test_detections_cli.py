"""`casescope detections`: by rule, the detection timeline in every format, the ATT&CK
Navigator layer, and bad options; on a real home with SigmaHQ rules and attack samples."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from casescope.cli.detections import TIMELINE_COLUMNS
from tests.e2e.conftest import Cli

SAMPLES = (
    "AutomatedTestingTools/panache_sysmon_vs_EDRTestingScript.evtx",
    "Lateral Movement/LM_wmiexec_impacket_sysmon_whoami.evtx",
    "Discovery/dicovery_4661_net_group_domain_admins_target.evtx",
)

#: A rule and an event whose text a terminal would act on (an escape) or Rich would read as
#: markup: the CLI prints them as text.
HOSTILE_RULE = """\
title: "Hostile \\e[31mred\\e[0m [bold]markup[/bold]"
id: 7a1c0000-0000-4000-8000-00000000c11c
status: experimental
logsource: {product: windows}
detection:
  selection: {Message|contains: 'clear-screen'}
  condition: selection
level: high
"""
HOSTILE_EVENT = {
    "EventTime": "2024-05-01T10:00:00Z",
    "Hostname": "[red]host[/red]",
    "Message": "clear-screen \x1b[2J here",
}


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, sigma_dir: Path, attack_samples: Path) -> Cli:
    rules = tmp_path_factory.mktemp("rules")
    windows = sigma_dir / "rules" / "windows"
    shutil.copytree(windows / "process_creation", rules / "process_creation")
    shutil.copytree(windows / "builtin" / "security", rules / "security")
    (rules / "hostile.yml").write_text(HOSTILE_RULE)
    hostile = rules.parent / "hostile.ndjson"
    hostile.write_text(json.dumps(HOSTILE_EVENT) + "\n")
    runner = Cli(tmp_path_factory.mktemp("detcli") / "home")
    runner.run("rules", "import", str(rules), "--name", "sigmahq")
    files = [str(attack_samples / s) for s in SAMPLES]
    runner.run("ingest", "--case", "d", *files, str(hostile))
    return runner


def _read(cli: Cli, *args: str) -> str:
    """What `detections --case d ARGS` prints, run in this process (`Cli.invoke`): the home
    is the module's, made by real processes; the by-rule and timeline tables, the navigator
    file and the hostile host below are printed by real `detections` processes."""
    proc = cli.invoke("detections", "--case", "d", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _hits(cli: Cli) -> list[dict]:
    out = _read(cli, "--format", "jsonl")
    return [json.loads(line) for line in out.splitlines()]


def test_timeline_jsonl_is_every_hit_in_time_order_with_summaries(cli: Cli) -> None:
    hits = _hits(cli)
    out = _read(cli, "--timeline", "--format", "jsonl")
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == len(hits) > 20
    assert Counter((r["file_id"], r["seq"], r["rule_uid"]) for r in rows) == Counter(
        (h["file_id"], h["seq"], h["rule_uid"]) for h in hits
    )
    assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)
    assert list(rows[0]) == list(TIMELINE_COLUMNS)
    assert all(r["computer"] and r["summary"] and r["level"] for r in rows)
    assert any(re.fullmatch(r"T\d{4}(\.\d{3})?( T\d{4}(\.\d{3})?)*", r["techniques"]) for r in rows)
    whoami = [r for r in rows if "whoami" in r["summary"].lower()]
    assert whoami and all("Image" in r["summary"] or "CommandLine" in r["summary"] for r in whoami)


def test_timeline_csv_and_table(cli: Cli) -> None:
    count = len(_hits(cli))
    out = _read(cli, "--timeline", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == count and list(rows[0]) == list(TIMELINE_COLUMNS)
    assert rows[0]["ts"].endswith("Z")
    table = cli.run("detections", "--case", "d", "--timeline").stdout.splitlines()
    assert table[0].startswith("time (UTC)") and len(table) == count + 1
    assert " ¦ " in table[1]


def test_timeline_filters(cli: Cli) -> None:
    high = _read(cli, "--timeline", "--level", "high", "--format", "jsonl").splitlines()
    rows = [json.loads(line) for line in high]
    assert rows and {r["level"] for r in rows} <= {"high", "critical"}
    discovery = _read(cli, "--timeline", "--tactic", "discovery", "--format", "jsonl").splitlines()
    assert discovery and all("discovery" in json.loads(r)["tactics"] for r in discovery)
    header_only = _read(cli, "--timeline", "--host", "no-such-host", "--format", "csv")
    assert header_only.strip() == ",".join(TIMELINE_COLUMNS)


def test_by_rule_table_shows_hosts_and_times(cli: Cli) -> None:
    out = cli.run("detections", "--case", "d").stdout
    assert "detections by rule" in out and "first seen (UTC)" in out
    assert "MSEDGEWIN10" in out or "IEWIN7" in out


def test_navigator_layer_to_a_file_and_stdout(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "layer.json"
    proc = cli.run("detections", "--case", "d", "--navigator", "-o", str(target))
    assert str(target) in proc.stdout
    layer = json.loads(target.read_text())
    assert layer["versions"]["layer"] == "4.5" and layer["domain"] == "enterprise-attack"
    assert layer["techniques"] and all(
        re.fullmatch(r"T\d{4}(\.\d{3})?", t["techniqueID"]) for t in layer["techniques"]
    )
    assert sum(t["score"] for t in layer["techniques"]) >= len(_hits(cli)) // 2
    stdout = _read(cli, "--navigator")
    assert json.loads(stdout)["techniques"] == layer["techniques"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--level", "foo"], "'foo' is not one of"),
        (["--status", "stabel"], "'stabel' is not one of"),
        (["--tactic", "exfil"], "unknown ATT&CK tactic"),
        (["--technique", "X1"], "not an ATT&CK technique id"),
        (["--timeline", "--navigator"], "not both"),
        (["--timeline", "--format", "json"], "is not one of"),
        (["--navigator", "-o", "/nonexistent/dir/layer.json"], "cannot write"),
    ],
)
def test_bad_options_are_one_clear_line(cli: Cli, args: list[str], message: str) -> None:
    proc = cli.invoke("detections", "--case", "d", *args)  # in this process: see Cli.invoke
    assert proc.returncode != 0 and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_hostile_titles_hosts_and_summaries_print_as_text(cli: Cli) -> None:
    for args in (["--timeline"], []):
        out = _read(cli, "--match", "hostile", *args)
        assert "\x1b" not in out
        assert "\\x1b[31mred" in out and "[bold]markup[/bold]" in out.replace("\n", "")
    timeline = cli.run("detections", "--case", "d", "--timeline", "--host", "[red]host[/red]")
    assert "[red]host[/red]" in timeline.stdout and "\\x1b[2J" in timeline.stdout

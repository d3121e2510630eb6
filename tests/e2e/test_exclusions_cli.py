"""Noise control from the CLI: exclusions hide hits (kept, countable, restorable), are
audited, touch only the excluded rule's hits, and apply to files ingested later."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from casescope.detect.engine import compile_rules
from casescope.detect.load import load_rules
from casescope.model.enums import FileType
from casescope.model.tables import AuditRecord, Detection, Job, Rule
from casescope.parse.files import iter_batches
from casescope.parse.report import ParseReport
from tests.e2e.conftest import Cli

NOISY = "6b1f0d5e-0000-4000-8000-0000000e0101"
OTHER = "6b1f0d5e-0000-4000-8000-0000000e0102"
RULES = {
    "noisy.yml": f"""title: Any process started
id: {NOISY}
status: experimental
level: low
logsource: {{product: windows, category: process_creation}}
detection:
  selection:
    Image|endswith: '.exe'
  condition: selection
""",
    "other.yml": f"""title: Any network connection
id: {OTHER}
status: experimental
level: low
logsource: {{product: windows, category: network_connection}}
detection:
  selection:
    Initiated: 'true'
  condition: selection
""",
}
FILTER = f"""title: Processes of the lab machine are benign
logsource: {{product: windows, category: process_creation}}
filter:
  rules: [{NOISY}]
  lab:
    Computer: MSEDGEWIN10
  condition: not lab
"""


def _rows(cli: Cli) -> dict[int, tuple[str, int | None]]:
    """Detection id -> (rule uid, excluded_by)."""
    with cli.db().session() as session:
        query = select(Detection.id, Rule.rule_uid, Detection.excluded_by).join(
            Rule, Rule.id == Detection.rule_id
        )
        return {det: (uid, excluded) for det, uid, excluded in session.execute(query)}


def _count(cli: Cli, model: type, *where: object) -> int:
    with cli.db().session() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _expected(rules: Path, samples: list[Path], computer: str) -> int:
    """Hits of the noisy rule on events of `computer`, straight from the engine."""
    ruleset = compile_rules(load_rules(rules))
    count = 0
    for path in samples:
        for batch in iter_batches(path, FileType.EVTX, ParseReport()):
            hits = ruleset.evaluate(batch)
            seqs = [s for s, r in zip(*hits.to_pydict().values(), strict=True) if r == NOISY]
            first = batch.column("seq")[0].as_py()
            hosts = batch.column("computer").to_pylist()
            count += sum(1 for s in seqs if hosts[s - first] == computer)
    return count


def _hits(cli: Cli, *options: str) -> list[dict]:
    """The case's detections as `detections` lists them, run in this process (`Cli.invoke`):
    it reads what the real `exclusions` and `ingest` processes wrote."""
    proc = cli.invoke("detections", "--case", "x", "--format", "jsonl", *options)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_exclusions_hide_and_restore(
    tmp_path_factory: pytest.TempPathFactory, attack_samples: Path
) -> None:
    rules = tmp_path_factory.mktemp("noise") / "rules"
    rules.mkdir()
    for name, text in RULES.items():
        (rules / name).write_text(text)
    samples = sorted(attack_samples.rglob("*.evtx"))
    cli = Cli(tmp_path_factory.mktemp("exclusions") / "home")
    cli.run("rules", "import", str(rules), "--name", "n")
    cli.run("ingest", "--case", "x", *map(str, samples[::9]))
    before = _rows(cli)
    jobs = _count(cli, Job)

    added = cli.run(
        "exclusions", "add", "--case", "x", "--rule", NOISY, "--where", "Computer=iewin7",
        "--note", "lab host",
    ).stdout  # fmt: skip
    hidden = int(added.split(":")[1].split()[0].replace(",", ""))
    assert hidden == _expected(rules, samples[::9], "IEWIN7") > 0
    after = _rows(cli)
    assert set(after) == set(before)  # kept, not deleted
    changed = {d for d in after if after[d] != before[d]}
    assert changed and all(after[d][0] == NOISY for d in changed)  # only that rule's hits
    assert _count(cli, Job) == jobs  # no re-parse, nothing queued
    assert len(_hits(cli)) == len(before) - hidden
    assert len(_hits(cli, "--hits", "excluded")) == hidden
    table = cli.run("exclusions", "list", "--case", "x").stdout
    assert "lab host" in table and f"{hidden:,}" in table
    assert _count(cli, AuditRecord, AuditRecord.action == "exclusion.add") == 1

    switch = cli.run("exclusions", "add", "--case", "x", "--rule", OTHER).stdout
    assert int(switch.split(":")[1].split()[0].replace(",", "")) > 0
    document = rules.parent / "filter.yml"
    document.write_text(FILTER)
    by_filter = cli.run("exclusions", "add", "--case", "x", "--filter", str(document)).stdout
    assert "hits hidden" in by_filter

    (first, second, third) = sorted({e for _, e in _rows(cli).values() if e is not None})
    for exclusion in (third, second):
        cli.run("exclusions", "remove", "--case", "x", str(exclusion))
    removed = cli.run("exclusions", "remove", "--case", "x", str(first)).stdout
    assert f"{hidden:,} hits shown again" in removed
    assert _rows(cli) == before  # every hit back, same rows
    assert _count(cli, AuditRecord, AuditRecord.action == "exclusion.remove") == 3

    # the refusals in this process (`Cli.invoke`): what they say is the point
    bad = cli.invoke("exclusions", "add", "--case", "x", "--rule", "nope")
    assert bad.returncode == 1 and "no imported rule nope" in bad.stderr
    bad = cli.invoke("exclusions", "add", "--case", "x", "--rule", NOISY, "--where", "x")
    assert bad.returncode == 1 and "is not FIELD=VALUE" in bad.stderr
    bad = cli.invoke("exclusions", "remove", "--case", "x", "999")
    assert bad.returncode == 1 and "no exclusion 999" in bad.stderr


def test_new_files_respect_the_case_exclusions(
    tmp_path_factory: pytest.TempPathFactory, attack_samples: Path
) -> None:
    rules = tmp_path_factory.mktemp("noise2") / "rules"
    rules.mkdir()
    (rules / "noisy.yml").write_text(RULES["noisy.yml"])
    samples = sorted(attack_samples.rglob("*.evtx"))
    cli = Cli(tmp_path_factory.mktemp("exclusions-later") / "home")
    cli.run("rules", "import", str(rules), "--name", "n")
    assert cli.invoke("case", "create", "x").returncode == 0  # not tested: in this process
    cli.run("exclusions", "add", "--case", "x", "--rule", NOISY, "--where", "Computer=IEWIN7")
    # 16 files: process starts on IEWIN7 and on three other hosts, and files with none
    cli.run("ingest", "--case", "x", *map(str, samples[::18]))
    rows = _rows(cli)
    hidden = [d for d, (_, excluded) in rows.items() if excluded is not None]
    assert hidden and len(hidden) < len(rows)  # written hidden by the worker
    assert len(_hits(cli, "--hits", "excluded")) == len(hidden)
    applied = cli.run("exclusions", "apply", "--case", "x").stdout  # the same decision
    assert f"{len(hidden):,} hits hidden" in applied and _rows(cli) == rows

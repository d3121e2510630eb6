"""IOC hunting through the `casescope` command: ioc add/import/list/remove and hits."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from casescope.cli.app import app
from casescope.config import Settings
from casescope.model.enums import AuditAction
from casescope.model.tables import AuditRecord
from casescope.store.owner import index_lock
from tests.e2e.conftest import Cli, SharedHome

SHARP_RDP = "Lateral Movement/LM_sysmon_3_12_13_1_SharpRDP.evtx"
WMIC_XSL = "Execution/exec_wmic_xsl_internet_sysmon_3_1_11.evtx"

#: Attacker-controlled event values: they reach the CSV export and the terminal.
HOSTILE_EVENTS = [
    {
        "@timestamp": "2024-05-01T10:00:00Z",
        "host": "ws01",
        "message": '=HYPERLINK("http://evil.example/","click")',
        "note": "'; DROP TABLE ioc_hits; --",
    },
    {"@timestamp": "2024-05-01T10:00:01Z", "host": "ws01", "html": "<script>alert(1)</script>"},
]

IOC_FILE = """type,value,note
ip,192.168.56[.]1,SharpRDP source
domain,inwitelecom.net,C2
md5,not-a-hash,bad line
string,"'; DROP TABLE ioc_hits; --",sql
string,<script>,html
string,=hyperlink(,formula
regex,(?<=x)y,look-behind is not supported
"""


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory, attack_samples: Path) -> list[Path]:
    ndjson = tmp_path_factory.mktemp("ioc-evidence") / "hostile.ndjson"
    ndjson.write_text("".join(json.dumps(e) + "\n" for e in HOSTILE_EVENTS))
    return [attack_samples / SHARP_RDP, attack_samples / WMIC_XSL, ndjson]


def _ingested(root: Path, evidence: list[Path]) -> SharedHome:
    cli = Cli(root / "home")
    cli.run("ingest", "--case", "c", *map(str, evidence))
    return SharedHome(cli).seal()


@pytest.fixture(scope="module")
def _all_three(tmp_path_factory: pytest.TempPathFactory, evidence: list[Path]) -> SharedHome:
    return _ingested(tmp_path_factory.mktemp("ioc-all"), evidence)


@pytest.fixture(scope="module")
def _two_evtx(tmp_path_factory: pytest.TempPathFactory, evidence: list[Path]) -> SharedHome:
    return _ingested(tmp_path_factory.mktemp("ioc-evtx"), evidence[:2])


@pytest.fixture
def all_three(_all_three: SharedHome) -> Cli:
    """A home whose case `c` holds all of `evidence`, ingested."""
    return _all_three.fresh()


@pytest.fixture
def two_evtx(_two_evtx: SharedHome) -> Cli:
    """A home whose case `c` holds the two EVTX files of `evidence`, ingested."""
    return _two_evtx.fresh()


def _jsonl(cli: Cli, *args: str) -> list[dict]:
    """The JSON lines a reading command prints, run in this process (`Cli.invoke`): it reads
    what the real `ingest`, `ioc import`, `ioc add` and `ioc remove` processes wrote (the
    `hits` and `search` tables below are read by real processes)."""
    proc = cli.invoke(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_ioc_import_hunts_ingested_evidence(all_three: Cli, tmp_path: Path) -> None:
    cli = all_three
    iocs_csv = tmp_path / "iocs.csv"
    iocs_csv.write_text(IOC_FILE)
    proc = cli.run("ioc", "import", "--case", "c", str(iocs_csv))
    assert "hunted the new IOCs in the index: 8 hits" in proc.stdout  # not re-read: indexed
    assert "queued" not in proc.stdout
    assert "imported 5 IOCs" in proc.stdout and "2 bad lines" in proc.stdout
    assert "line 4: 'not-a-hash' is not a valid md5 hash" in proc.stderr
    assert "line 8:" in proc.stderr

    listed = _jsonl(cli, "ioc", "list", "--case", "c", "--format", "jsonl")
    assert {i["original"] for i in listed} == {
        "192.168.56[.]1",
        "inwitelecom.net",
        "'; DROP TABLE ioc_hits; --",
        "<script>",
        "=hyperlink(",
    }
    hits = _jsonl(cli, "hits", "--case", "c", "--format", "jsonl")
    got = sorted(
        (Path(h["original_path"]).name, h["seq"], h["ioc_value"], h["field"]) for h in hits
    )
    assert got == [
        ("LM_sysmon_3_12_13_1_SharpRDP.evtx", seq, "192.168.56.1", "SourceIp")
        for seq in (0, 7, 13, 21)
    ] + [
        ("exec_wmic_xsl_internet_sysmon_3_1_11.evtx", 6, "inwitelecom.net", "DestinationHostname"),
        ("hostile.ndjson", 0, "'; drop table ioc_hits; --", "note"),
        ("hostile.ndjson", 0, "=hyperlink(", "message"),
        ("hostile.ndjson", 1, "<script>", "html"),
    ]
    assert all(h["ts"].endswith("Z") for h in hits)

    table = cli.run("hits", "--case", "c").stdout
    assert "IOC hits" in table and "<script>" in table

    out = cli.invoke("hits", "--case", "c", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    formula = next(r for r in rows if r["field"] == "message")
    assert formula["excerpt"].startswith("'=HYPERLINK(") and formula["ioc_value"] == "'=hyperlink("
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values())
    sql = next(r for r in rows if r["field"] == "note")
    assert sql["excerpt"] == "'; DROP TABLE ioc_hits; --"
    listed = cli.invoke("ioc", "list", "--case", "c", "--format", "csv").stdout
    assert "'=hyperlink(" in listed


def test_ioc_add_remove_and_filters(two_evtx: Cli) -> None:
    cli = two_evtx
    values = ("192.168.56.1", "10.0.2.1", "27.static.afterburst.com")
    proc = cli.run("ioc", "add", "--case", "c", *values)
    assert "added 3 IOCs" in proc.stdout and "in the index: 4 hits" in proc.stdout
    listed = _jsonl(cli, "ioc", "list", "--case", "c", "--format", "jsonl")
    ids = {i["value"]: i["id"] for i in listed}
    hits = _jsonl(cli, "hits", "--case", "c", "--format", "jsonl")
    assert {h["ioc_id"] for h in hits} == {ids["192.168.56.1"]} and len(hits) == 4
    only = _jsonl(cli, "hits", "--case", "c", "--ioc", str(ids["10.0.2.1"]), "--format", "jsonl")
    assert only == []
    assert len(_jsonl(cli, "hits", "--case", "c", "--type", "ip", "--format", "jsonl")) == 4
    assert _jsonl(cli, "hits", "--case", "c", "--type", "domain", "--format", "jsonl") == []

    bad = cli.invoke("ioc", "add", "--case", "c", "--type", "md5", "xyz")
    assert bad.returncode == 1 and "'xyz' is not a valid md5 hash" in bad.stderr
    missing = cli.invoke("ioc", "remove", "--case", "c", "999")
    assert missing.returncode == 1 and "no IOC with id 999" in missing.stderr

    proc = cli.run("ioc", "remove", "--case", "c", str(ids["192.168.56.1"]))
    assert "removed 1 IOCs and 4 hits" in proc.stdout
    assert _jsonl(cli, "hits", "--case", "c", "--format", "jsonl") == []
    with cli.db().session() as session:
        actions = session.scalars(select(AuditRecord.action)).all()
    assert actions.count(AuditAction.STEP_INDEXING) == 2 and AuditAction.IOC_REMOVE in actions
    assert "Usage" in cli.run("ioc", "add", "--help").stdout
    for command in ("import", "list", "enable", "disable", "remove", "rehunt"):
        # the same app in this process: a help text needs no process of its own
        result = CliRunner().invoke(app, ["ioc", command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, result.output


def _searched(cli: Cli, *options: str, query: str = "") -> set[tuple[str, int]]:
    """(file name, seq) of every event `casescope search` returns with these options, run in
    this process (`_jsonl`); the `search` table below is a real process."""
    args = ("search", query, "--case", "c", "--format", "jsonl", "--limit", "100000")
    rows = _jsonl(cli, *args, *options)
    return {(str(r["file_id"]), r["seq"]) for r in rows}


def test_search_and_export_only_events_with_ioc_hits(all_three: Cli, tmp_path: Path) -> None:
    cli = all_three
    cli.run("ioc", "add", "--case", "c", "192.168.56.1", "inwitelecom.net", "10.9.9.9")
    listed = _jsonl(cli, "ioc", "list", "--case", "c", "--format", "jsonl")
    ids = {i["value"]: str(i["id"]) for i in listed}
    hits = _jsonl(cli, "hits", "--case", "c", "--format", "jsonl")
    hit_events = {(str(h["file_id"]), h["seq"]) for h in hits}
    by_ioc = {
        value: {(str(h["file_id"]), h["seq"]) for h in hits if h["ioc_value"] == value}
        for value in ("192.168.56.1", "inwitelecom.net")
    }
    assert len(hit_events) == 5 and len(by_ioc["192.168.56.1"]) == 4

    assert _searched(cli, "--ioc") == hit_events
    assert _searched(cli, "--ioc-id", ids["192.168.56.1"]) == by_ioc["192.168.56.1"]
    assert _searched(cli, "--ioc-type", "domain") == by_ioc["inwitelecom.net"]
    assert _searched(cli, "--ioc-id", ids["10.9.9.9"]) == set()  # an IOC with no hits
    both = ("--ioc-id", ids["192.168.56.1"], "--ioc-id", ids["inwitelecom.net"])
    assert _searched(cli, *both) == hit_events
    # --ioc narrows a query; it does not widen it
    narrowed = _searched(cli, "--ioc", query="EventID:3")
    assert narrowed <= hit_events
    assert narrowed == _searched(cli, query="EventID:3") & hit_events
    assert _searched(cli, "--ioc", "--detections") == set()  # no rules: no detections

    table = cli.run("search", "", "--case", "c", "--ioc").stdout
    assert "1-5 of 5 matching events" in table
    out = tmp_path / "ioc.csv"
    proc = cli.run("export", "--case", "c", "--format", "csv", "--ioc", "-o", str(out))
    assert "exported 5 events" in proc.stdout
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert {(r["file_id"], int(r["seq"])) for r in rows} == hit_events
    jsonl = cli.invoke("export", "--case", "c", "--format", "jsonl", "--ioc-type", "ip").stdout
    assert len(jsonl.splitlines()) == 4

    bad = cli.invoke("search", "", "--case", "c", "--ioc-type", "nonsense")
    assert bad.returncode != 0 and "nonsense" in bad.stderr


def test_ioc_add_while_another_process_owns_the_index_rehunts_segments(two_evtx: Cli) -> None:
    cli = two_evtx
    settings = Settings(home=cli.home)
    with index_lock(settings.owner_lock_path, "casescope serve"):  # as if `serve` ran
        proc = cli.run("ioc", "add", "--case", "c", "192.168.56.1")
    assert "owned by" in proc.stderr and "re-hunting from segments instead" in proc.stderr
    assert "queued 2 files for IOC re-hunt" in proc.stdout
    hits = _jsonl(cli, "hits", "--case", "c", "--format", "jsonl")
    assert len(hits) == 4

"""Search and export through the CLI, with attacker-controlled strings in event fields."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import orjson
import pytest

from casescope.store.summary import summarise
from tests.e2e.conftest import Cli

HOSTILE = [
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "@SUM(1+1)",
    "<img src=x onerror=alert(1)>",
    "javascript:alert(document.cookie)",
    "[bold red]rich markup[/]",
    "evil\u202etxt.exe",
    "tab\tand\nnewline",
    "'; DROP TABLE events; --",
    '\t=HYPERLINK("http://x")',
]


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory, attack_samples: Path) -> Cli:
    root = tmp_path_factory.mktemp("search")
    evidence = root / "evidence"
    evidence.mkdir()
    lines = [
        orjson.dumps(
            {
                "@timestamp": f"2024-02-0{1 + n % 9}T12:00:00Z",
                "host": {"name": f"H{n}"},
                "EventID": 9000 + n,
                "user": value,
                "payload": value,
            }
        ).decode()
        for n, value in enumerate(HOSTILE)
    ]
    (evidence / "hostile.jsonl").write_text("\n".join(lines) + "\n")
    (evidence / "sysmon").mkdir()
    for sample in sorted(attack_samples.rglob("*Sysmon*.evtx"))[:5]:
        (evidence / "sysmon" / sample.name).write_bytes(sample.read_bytes())
    cli = Cli(root / "home")
    cli.run("ingest", "--case", "s", str(evidence))
    return cli


def _read(cli: Cli, *args: str) -> str:
    """What a reading command prints, run in this process (`Cli.invoke`): it reads the home
    a real `ingest` made. The CSV export to a file, the search tables and the bad query
    are real processes."""
    proc = cli.invoke(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_export_csv_streams_every_event_and_defuses_formulas(case: Cli, tmp_path: Path) -> None:
    out = tmp_path / "all.csv"
    proc = case.run("export", "--case", "s", "--format", "csv", "-o", str(out))
    status = json.loads(_read(case, "status", "--case", "s", "--format", "json"))
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == status["events_indexed"] > len(HOSTILE)
    assert f"exported {len(rows):,} events" in proc.stdout
    fields = [json.loads(r["fields"]) for r in rows]
    payloads = {f["payload"] for f in fields if "payload" in f}
    assert payloads == set(HOSTILE)  # the JSON column keeps the exact value
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value


def test_exports_carry_the_summary_of_each_event(case: Cli) -> None:
    """CSV and JSONL gain a `summary` column: the event's one-line summary, as the web
    results and the CLI table show it (written by ClickHouse, the same as in Python)."""
    csv_text = _read(case, "export", "--case", "s", "--format", "csv", "-q", "EventID:1")
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert rows and list(rows[0])[11:] == ["summary", "fields", "raw"]
    lines = _read(case, "export", "--case", "s", "--format", "jsonl", "-q", "EventID:1")
    records = [json.loads(line) for line in lines.splitlines()]
    assert len(records) == len(rows)
    for row, record in zip(rows, records, strict=True):
        expected = summarise(
            record["channel"], record["provider"], record["event_id"], record["fields"]
        )
        assert record["summary"] == expected == row["summary"].removeprefix("'")
        assert expected.startswith("Image: ")  # Sysmon 1: the process first
    hostile = _read(case, "export", "--case", "s", "--format", "csv", "-q", "_exists_:payload")
    for row in csv.DictReader(io.StringIO(hostile)):
        assert not row["summary"].startswith(("=", "+", "-", "@", "\t", "\r"))


def test_search_table_shows_the_summary(case: Cli) -> None:
    proc = case.run("search", "--case", "s", "EventID:1", "--limit", "3")
    assert "summary" in proc.stdout and "Image: " in proc.stdout
    assert "details" not in proc.stdout


def test_export_jsonl_round_trips_exact_values(case: Cli) -> None:
    out = _read(case, "export", "--case", "s", "--format", "jsonl", "--query", "_exists_:payload")
    records = [json.loads(line) for line in out.splitlines()]
    assert sorted(r["fields"]["payload"] for r in records) == sorted(HOSTILE)
    assert [r["ts"] for r in records] == sorted(r["ts"] for r in records)


def test_search_table_shows_markup_literally(case: Cli) -> None:
    proc = case.run("search", "--case", "s", '"rich markup"')
    assert "[bold red]rich markup[/]" in proc.stdout
    assert "1-1 of 1 matching events" in proc.stdout


def test_search_jsonl_with_field_and_time_filters(case: Cli) -> None:
    span = ("--from", "2024-02-03T00:00:00Z", "--to", "2024-02-05")
    out = _read(case, "search", "--case", "s", "EventID:[9000 TO 9009]", *span, "--format", "jsonl")
    records = [json.loads(line) for line in out.splitlines()]
    assert sorted(r["event_id"] for r in records) == [9002, 9003]


def test_bad_query_is_a_clear_error(case: Cli) -> None:
    proc = case.run("search", "--case", "s", "EventID:(4624", check=False)
    assert proc.returncode == 1 and "error:" in proc.stderr and "column" in proc.stderr
    assert "Traceback" not in proc.stderr


#: Text logs as Windows tools write them: UTF-16 with a BOM (LE and BE), UTF-8 with a BOM.
WIDE_NDJSON = "".join(
    orjson.dumps({"@timestamp": f"2024-04-0{n}T08:00:00Z", "host": "PC-é", "user": u}).decode()
    + "\r\n"
    for n, u in enumerate(["Ünïcødé", "日本語", "😀"], start=1)
)
WIDE_CSV = "TimeCreated,Computer,Message\r\n2024-04-05 09:00:00,DC-ü,Ереван\r\n"


def test_utf16_and_bom_text_logs_are_ingested_and_searchable(tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "le.jsonl").write_bytes(b"\xff\xfe" + WIDE_NDJSON.encode("utf-16-le"))
    (evidence / "be.csv").write_bytes(b"\xfe\xff" + WIDE_CSV.encode("utf-16-be"))
    (evidence / "bom.csv").write_bytes(b"\xef\xbb\xbf" + WIDE_CSV.replace("05", "06").encode())
    cli = Cli(tmp_path / "home")
    cli.run("ingest", "--case", "w", str(evidence))
    status = json.loads(_read(cli, "status", "--case", "w", "--format", "json"))
    assert status["events_indexed"] == 5
    out = _read(cli, "search", "", "--case", "w", "--format", "jsonl")
    records = [json.loads(line) for line in out.splitlines()]
    users = [r["fields"].get("user") for r in records if "user" in r["fields"]]
    assert users == ["Ünïcødé", "日本語", "😀"]
    messages = [r["fields"]["Message"] for r in records if "Message" in r["fields"]]
    assert messages == ["Ереван", "Ереван"]
    assert {r["computer"] for r in records} == {"PC-é", "DC-ü"}
    found = _read(cli, "search", '"日本語"', "--case", "w", "--format", "jsonl")
    assert len(found.splitlines()) == 1

"""`casescope report`: the case story as Markdown, HTML and CSV from the real command, with
hostile event values and analyst text kept inert."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import orjson
import pytest

from casescope.config import Settings
from casescope.services import story as st
from casescope.services.cases import get_case
from casescope.store.owner import open_index
from tests.e2e.conftest import Cli

XSS = "<img src=x onerror=alert(1)>"
FORMULA = "=cmd|' /C calc'!A0"


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory, attack_samples: Path) -> Cli:
    root = tmp_path_factory.mktemp("report")
    evidence = root / "evidence"
    evidence.mkdir()
    record = {"@timestamp": "2024-02-01T12:00:00Z", "host": {"name": XSS}, "EventID": 9001}
    lines = [orjson.dumps({**record, "user": value}).decode() for value in (XSS, FORMULA)]
    (evidence / "hostile.jsonl").write_text("\n".join(lines) + "\n")
    sample = attack_samples / "Lateral Movement" / "LM_Remote_Service02_7045.evtx"
    (evidence / sample.name).write_bytes(sample.read_bytes())
    cli = Cli(root / "home")
    cli.run("ingest", "--case", "r", str(evidence))
    db = cli.db()
    case_id = get_case(db, "r").id
    with open_index(Settings(home=cli.home), role="test") as index:
        keys = [*((f, s) for f in range(1, 3) for s in range(2)), (9, 0)]
        added = st.add_found(db, index, case_id, keys, "ann")
    assert len(added.entries) == 4 and added.missing == 1  # no file 9
    st.add_text(db, case_id, f"Then: {XSS} and {FORMULA}", "ann", position=1)
    db.dispose()
    return cli


def test_report_in_each_format_follows_the_story(case: Cli, tmp_path: Path) -> None:
    md = case.run("report", "--case", "r").stdout
    assert md.startswith("# Case report: r") and "4 events" in md
    assert md.index("Then:") < md.index("EventID 9001")  # the text is second, as placed
    assert "<img" not in md.replace("\\<img", "")
    out = tmp_path / "r.html"
    proc = case.run("report", "--case", "r", "--format", "html", "--output", str(out))
    assert "5 items" in proc.stdout
    html = out.read_text()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "default-src 'none'" in html and "<script" not in html
    assert "LM_Remote_Service02_7045.evtx" in html and "7045" in html
    # the CSV in this process (`Cli.invoke`): the Markdown and HTML above are real processes
    as_csv = case.invoke("report", "-c", "r", "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["kind"] for r in rows] == ["event", "text", "event", "event", "event"]
    assert rows[1]["text"].startswith("Then: ") and rows[1]["by"] == "ann"
    assert all(not v.startswith("=") for r in rows for v in r.values())
    assert any(r["user_name"] == "'" + FORMULA for r in rows)
    audit = case.invoke("audit", "--action", "report.export", "--format", "jsonl").stdout
    assert audit.count("report.export") == 3


def test_report_refuses_bad_input_with_one_clear_line(case: Cli, tmp_path: Path) -> None:
    # what the command says is the point: in this process (`Cli.invoke`)
    missing = case.invoke("report", "--case", "nope")
    assert missing.returncode == 1 and "no case named 'nope'" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad = case.invoke("report", "--case", "r", "--format", "pdf")
    assert bad.returncode == 2 and "pdf" in bad.stderr
    nowhere = tmp_path / "no" / "such" / "r.md"
    refused = case.invoke("report", "--case", "r", "--output", str(nowhere))
    assert refused.returncode == 1 and "no folder" in refused.stderr

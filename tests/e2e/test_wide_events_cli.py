"""Very wide events (NDJSON lines of megabytes, under the 16 MiB line limit) reach the index
within the owner's memory budget, and a file whose events cannot be loaded fails alone: the
other files of its batch, the other cases and every later command go on (store/loader.py,
store/load_failures.py, docs/decisions.md "Wide events")."""

from __future__ import annotations

import json
import os
from pathlib import Path

from sqlalchemy import select

from casescope.model.enums import FileStatus, IndexState
from casescope.model.tables import EvidenceFile
from tests.e2e.conftest import Cli

#: Ten lines of 8 MB of hex: one INSERT of them needed more than the 300 MB budget below.
LINES = 10
LINE_BYTES = 8_000_000


def _wide(path: Path) -> Path:
    with path.open("w") as out:
        for n in range(LINES):
            line = {
                "@timestamp": f"2024-01-01T00:00:{n:02d}Z",
                "EventID": 1,
                "CommandLine": f"wide{n} " + os.urandom(LINE_BYTES // 2).hex(),
            }
            out.write(json.dumps(line) + "\n")
    return path


def _small(path: Path, word: str) -> Path:
    path.write_text(
        json.dumps({"@timestamp": "2024-01-01T00:00:00Z", "EventID": 4624, "Message": word}) + "\n"
    )
    return path


def _files(cli: Cli) -> dict[str, EvidenceFile]:
    with cli.db().session() as session:
        return {Path(f.original_path).name: f for f in session.scalars(select(EvidenceFile))}


def _found(cli: Cli, case: str, query: str, *, in_process: bool = False) -> list[dict]:
    """The events `search` finds; `in_process`: run in this process (`Cli.invoke`), for a
    small result at the default memory budget (chDB's limit counts the whole process, and
    pytest's is far bigger than a command's)."""
    args = ("search", "--case", case, query, "--format", "jsonl")
    out = cli.invoke(*args).stdout if in_process else cli.run(*args).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _batch(tmp_path: Path) -> Path:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    _wide(evidence / "wide.ndjson")
    _small(evidence / "beside.ndjson", "beside")
    return evidence


def test_wide_events_are_loaded_and_nothing_else_breaks(cli: Cli, tmp_path: Path) -> None:
    cli.extra["CASESCOPE_INDEX_MEMORY_MB"] = "300"  # the least allowed
    cli.run("ingest", "--case", "other", str(_small(tmp_path / "other.ndjson", "elsewhere")))
    proc = cli.run("ingest", "--case", "wide", str(_batch(tmp_path)))  # exits 0, no traceback
    files = _files(cli)
    wide = files["wide.ndjson"]
    assert wide.status is FileStatus.COMPLETED and wide.index_state is IndexState.LOADED
    assert wide.event_count == LINES
    assert "line 1: an event of 8,000,0" in wide.warnings and "kept to the first" in wide.warnings
    assert "1 files with warnings" in proc.stdout
    assert files["beside.ndjson"].index_state is IndexState.LOADED
    # every wide event is searchable (by the start of its value), and so is everything else
    assert len(_found(cli, "wide", "EventID:1")) == LINES
    assert [e["seq"] for e in _found(cli, "wide", "wide7")] == [7]
    assert len(_found(cli, "wide", "beside")) == 1
    assert len(_found(cli, "other", "elsewhere")) == 1
    cli.run("status")


def test_a_file_that_cannot_be_loaded_fails_alone(cli: Cli, tmp_path: Path) -> None:
    """Its segment is damaged between the parse and the load: `status` (which loads what is
    pending) fails that file with the reason, loads the rest, and nothing fails later."""
    cli.run("ingest", "--case", "other", str(_small(tmp_path / "other.ndjson", "elsewhere")))
    cli.run("ingest", "--no-wait", "--case", "wide", str(_batch(tmp_path)))
    cli.worker()  # parses both files; no index owner runs, so they wait to be loaded
    with cli.db().session() as session:
        query = select(EvidenceFile).where(EvidenceFile.original_path.endswith("wide.ndjson"))
        wide = session.scalars(query).one()
        assert wide.index_state is IndexState.PENDING
        segment = Path(wide.segment.path)
    segment.write_bytes(segment.read_bytes()[: segment.stat().st_size // 2])
    status = cli.run("status", "--case", "wide").stdout  # exits 0, no traceback
    files = _files(cli)
    failed = files["wide.ndjson"]
    assert failed.status is FileStatus.FAILED and failed.index_state is IndexState.NONE
    assert "could not be loaded into the event index" in failed.error
    assert f"casescope reindex --case wide --file {failed.id}" in failed.error
    assert "could not be loaded" in status
    assert files["beside.ndjson"].index_state is IndexState.LOADED
    # what the real `status` and `reindex` left, searched in this process
    assert len(_found(cli, "wide", "beside", in_process=True)) == 1
    assert len(_found(cli, "other", "elsewhere", in_process=True)) == 1
    # once the segment is whole again, a re-index brings the file back
    segment.unlink()
    cli.run("reindex", "--case", "wide", "--file", str(failed.id))
    assert _files(cli)["wide.ndjson"].status is FileStatus.COMPLETED
    assert len(_found(cli, "wide", "EventID:1")) == LINES  # 80 MB of events: a process

"""`casescope ingest` of a zip end to end (workers included), then `casescope doctor`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import Cli
from tests.integration.evidence.conftest import make_zip


def test_ingest_a_zip_to_completion_then_doctor_verifies(
    cli: Cli,
    samples: list[Path],
    tmp_path: Path,
) -> None:
    archive = make_zip(
        tmp_path / "[bold]triage & co.zip",
        {f"HOST\\{n}.evtx": sample for n, sample in enumerate(samples[:3])}
        | {"../escape.evtx": samples[3]},
    )

    out = cli.run("ingest", "--case", "zip", str(archive)).stdout

    assert "3 queued" in out and "1 rejected" in out
    assert "[bold]triage & co.zip!../escape.evtx" in out  # shown literally, not as markup
    assert "verified 4 files" not in out and "verified 3 files" in out
    assert "every file accounted for" in out
    status = json.loads(cli.run("status", "--format", "json").stdout)
    assert status["files_by_status"] == {"completed": 3}
    assert status["events_indexed"] == status["events_parsed"] > 0
    doctor = cli.run("doctor", "--check").stdout
    assert "verified 3 files: 3 completed, 0 failed, 0 queued or running" in doctor

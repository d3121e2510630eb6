"""A disk that fills while a worker writes: the file fails clearly, the others stay intact,
and once space returns the file is processed by a plain re-index.

The "small disk" is `RLIMIT_FSIZE` in the worker pool (inherited by its workers): no file a
worker writes may grow past LIMIT, so the big file's segment cannot be written while the
small files' segments, the metadata DB and its WAL stay well under it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from casescope.evidence.intake import ingest_paths
from casescope.model.enums import FileStatus
from casescope.model.tables import EvidenceFile, Segment
from casescope.services.cases import create_case
from tests.e2e.conftest import Cli
from tests.faults.conftest import db_for, index_counts, smallest_samples

LIMIT = 6 * 2**20
BIG_LINES = 60_000

LIMITED_POOL = (
    "import resource, sys\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
    "sys.argv = ['casescope', 'worker', '--workers', '1', '--exit-when-idle']\n"
    "from casescope.cli.app import main\n"
    "main()\n"
)


def _incompressible_ndjson(path: Path, lines: int) -> Path:
    """NDJSON whose segment is far above LIMIT: random text does not compress."""
    with path.open("w") as out:
        for n in range(lines):
            noise = os.urandom(96).hex()
            out.write(
                f'{{"@timestamp": "2024-03-01T10:00:{n % 60:02d}Z", "host": {{"name": "ws"}}, '
                f'"message": "{noise}", "n": {n}}}\n'
            )
    return path


def _run_limited_pool(cli: Cli) -> None:
    subprocess.run(
        [sys.executable, "-c", LIMITED_POOL.format(limit=LIMIT)],
        env=cli.env,
        check=True,
        timeout=300,
        capture_output=True,
    )


def _files(cli: Cli) -> dict[int, EvidenceFile]:
    with db_for(cli).session() as session:
        files = {f.id: f for f in session.scalars(select(EvidenceFile))}
        for f in files.values():
            session.expunge(f)
        return files


def _segment(cli: Cli, file: EvidenceFile) -> bytes:
    with db_for(cli).session() as session:
        return Path(session.get(Segment, file.segment_id).path).read_bytes()


def test_disk_full_fails_the_file_clearly_and_it_resumes_when_space_returns(
    cli: Cli, attack_samples: Path, tmp_path: Path
) -> None:
    first, last = smallest_samples(attack_samples, 2)
    big = _incompressible_ndjson(tmp_path / "big.jsonl", BIG_LINES)
    db = db_for(cli)
    report = ingest_paths(db, db.settings, create_case(db, "disk"), [first, big, last])
    small_ids, big_id = [report.queued[0], report.queued[2]], report.queued[1]

    _run_limited_pool(cli)

    files = _files(cli)
    assert files[big_id].status is FileStatus.FAILED
    assert "disk full" in files[big_id].error and "File too large" in files[big_id].error
    assert all(files[i].status is FileStatus.COMPLETED for i in small_ids)
    assert not list((cli.home / "tmp").iterdir()), "a partial segment was left behind"
    small_events = sum(files[i].event_count for i in small_ids)
    assert index_counts(cli) == (small_events, small_events)
    segments = {i: _segment(cli, files[i]) for i in small_ids}

    cli.run("reindex", "--case", "disk", "--file", str(big_id))  # space is back

    files = _files(cli)
    assert files[big_id].status is FileStatus.COMPLETED and files[big_id].event_count == BIG_LINES
    assert all(_segment(cli, files[i]) == segments[i] for i in small_ids)
    total = small_events + BIG_LINES
    assert index_counts(cli) == (total, total)
    status = json.loads(cli.run("status", "--format", "json").stdout)
    assert status["files_by_status"] == {"completed": 3}

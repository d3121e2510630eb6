"""Bad input never stops a batch: each file ends completed (with what could be read) or failed
with a clear reason, and the rest of the batch is unaffected."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from sqlalchemy import select

from casescope.evidence.intake import ingest_paths
from casescope.model.enums import FileStatus
from casescope.model.tables import EvidenceFile
from casescope.services.cases import create_case
from tests.e2e.conftest import Cli


def _files(cli: Cli) -> dict[str, EvidenceFile]:
    with cli.db().session() as session:
        return {Path(f.original_path).name: f for f in session.scalars(select(EvidenceFile))}


def _status(cli: Cli) -> dict:
    """`status --format json`, run in this process (`Cli.invoke`): it reads what the real
    commands of the test wrote (the status table of the first test is a real process)."""
    proc = cli.invoke("status", "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_mixed_bad_batch(cli: Cli, attack_samples: Path, tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    good = max(attack_samples.rglob("*.evtx"), key=lambda p: p.stat().st_size)
    data = good.read_bytes()
    (evidence / "good.evtx").write_bytes(data)
    chunks = struct.unpack_from("<H", data, 42)[0]  # chunk count in the EVTX file header
    cut = 4096 + 65536 * (chunks // 2) + 4000  # mid-way through a chunk that holds records
    (evidence / "truncated.evtx").write_bytes(data[:cut])
    (evidence / "empty.evtx").write_bytes(b"")
    (evidence / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10)
    (evidence / "bad utf8.jsonl").write_bytes(
        b'{"timestamp": "2024-01-01T00:00:00Z", "msg": "ok"}\n'
        b'{"timestamp": "2024-01-01T00:00:01Z", "msg": "caf\xe9"}\n'
        b"not json at all\n"
    )
    proc = cli.run("ingest", "--case", "bad", str(evidence))
    files = _files(cli)
    assert files["good.evtx"].status is FileStatus.COMPLETED
    truncated = files["truncated.evtx"]
    assert truncated.status is FileStatus.COMPLETED
    assert 0 < truncated.event_count < files["good.evtx"].event_count
    assert files["empty.evtx"].status is FileStatus.COMPLETED and files["empty.evtx"].hidden
    assert files["picture.png"].status is FileStatus.REJECTED
    assert "not recognised as evidence" in files["picture.png"].error
    assert "picture.png" in proc.stdout
    jsonl = files["bad utf8.jsonl"]
    assert jsonl.status is FileStatus.COMPLETED and jsonl.event_count == 2
    assert "line 3" in jsonl.warnings
    # what could not be read is said, not only kept in the DB: by ingest, status and files
    assert "2 files with warnings" in proc.stdout
    for shown in (cli.run("status", "--case", "bad").stdout, proc.stdout):
        assert "files with warnings" in shown
        assert "truncated.evtx" in shown and "line 3" in shown
    files_out = cli.invoke("files", "--case", "bad", "--format", "jsonl").stdout  # in-process
    listed = [json.loads(line) for line in files_out.splitlines()]
    by_name = {Path(row["name"]).name: row for row in listed}
    assert "line 3" in by_name["bad utf8.jsonl"]["warnings"]
    assert by_name["good.evtx"]["sha256"] == files["good.evtx"].sha256
    assert by_name["picture.png"]["status"] == "rejected"
    # a rejected file is settled, not stuck: doctor neither flags nor re-queues it
    doctor = cli.run("doctor").stdout
    assert "1 rejected" in doctor and "every file accounted for" in doctor
    assert _files(cli)["picture.png"].status is FileStatus.REJECTED


def test_missing_evidence_fails_naming_the_path(cli: Cli, attack_samples: Path) -> None:
    samples = sorted(attack_samples.rglob("*.evtx"))[:3]
    db = cli.db()
    case = create_case(db, "gone")
    report = ingest_paths(db, db.settings, case, samples)  # queued; no worker runs yet
    assert len(report.queued) == 3
    stored = Path(_files(cli)[samples[1].name].stored_path)
    stored.unlink()
    cli.run("worker", "--exit-when-idle", "--workers", "1", timeout=120)
    files = _files(cli)
    gone = files[samples[1].name]
    assert gone.status is FileStatus.FAILED
    assert str(stored) in gone.error and "missing" in gone.error
    for sample in (samples[0], samples[2]):
        assert files[sample.name].status is FileStatus.COMPLETED
    status = _status(cli)
    assert status["files_by_status"] == {"completed": 2, "failed": 1}


def test_doctor_and_reindex_find_an_evidence_copy_changed_since_intake(
    cli: Cli, attack_samples: Path
) -> None:
    samples = sorted(attack_samples.rglob("*.evtx"), key=lambda p: p.stat().st_size)[-2:]
    cli.run("ingest", "--case", "kept", *map(str, samples))
    files = _files(cli)
    altered, intact = files[samples[0].name], files[samples[1].name]
    stored = Path(altered.stored_path)
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit-pattern in the last chunk
    stored.write_bytes(bytes(data))
    before = _status(cli)["events_indexed"]
    # present: only a re-hash can tell (in this process; the re-hash below is a real one)
    assert cli.invoke("doctor", "--check").returncode == 0
    doctor = cli.run("doctor", "--check", "--verify-evidence", check=False)
    assert doctor.returncode == 1
    assert "evidence copies re-hashed: 2, changed since intake: 1" in doctor.stdout
    assert f"evidence changed file {altered.id}: " in doctor.stdout

    proc = cli.run("reindex", "--case", "kept", "--file", str(altered.id), "--file", str(intact.id))

    files = _files(cli)
    assert files[samples[1].name].status is FileStatus.COMPLETED
    failed = files[samples[0].name]
    assert failed.status is FileStatus.FAILED
    assert "changed since it was taken in" in failed.error
    assert altered.sha256 in failed.error and str(stored) in failed.error
    assert "changed since it was taken in" in proc.stdout
    # the events read from the copy before it changed stay searchable
    after = _status(cli)["events_indexed"]
    assert after == before


def test_a_home_that_cannot_be_created_is_one_clear_line(tmp_path: Path) -> None:
    """CASESCOPE_HOME through a regular file: every command that opens the home says so in
    one line and exits 1 (it printed a traceback and exited 0)."""
    (tmp_path / "afile").write_text("not a folder")
    cli = Cli(tmp_path / "afile" / "home")
    for args in (("case", "list"), ("status",), ("worker", "--exit-when-idle")):
        proc = cli.run(*args, check=False)
        assert proc.returncode == 1, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and "╭" not in proc.stderr
        assert f"the home {cli.home} (CASESCOPE_HOME) cannot be used" in proc.stderr
        assert "Not a directory" in proc.stderr

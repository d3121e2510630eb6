"""Web uploads go through the same intake as `casescope ingest`: zips member by member."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest

from casescope.config import Settings
from casescope.errors import EvidenceError
from casescope.model.db import Database
from casescope.services.cases import get_or_create_case
from casescope.services.uploads import ingest_uploads
from tests.integration.evidence.conftest import add_symlink, make_zip, refusals, rows_by_original


def test_uploaded_zips_are_taken_in_by_the_archive_intake(
    db: Database, settings: Settings, samples: list[Path], tmp_path: Path
) -> None:
    inner = make_zip(tmp_path / "inner.zip", {"deep/b.evtx": samples[1]})
    outer = make_zip(
        tmp_path / "outer.zip",
        {"logs/a.evtx": samples[0], "inner.zip": inner, "../../escape.evtx": samples[2]},
    )
    add_symlink(outer, "link.evtx", "/etc/passwd")
    case = get_or_create_case(db, "up")[0]
    uploads = [
        (io.BytesIO(outer.read_bytes()), "../../evil/outer.zip"),
        (io.BytesIO(samples[3].read_bytes()), "C:\\x\\loose.evtx"),
    ]
    result = ingest_uploads(db, settings, case, uploads, actor="web:test")

    assert result.names == ["outer.zip", "loose.evtx"]
    assert len(result.report.queued) == 3
    assert sorted(rows_by_original(db)) == [
        "upload:loose.evtx",
        "upload:outer.zip!inner.zip!deep/b.evtx",
        "upload:outer.zip!logs/a.evtx",
    ]
    rejected = dict(result.report.rejected)
    assert "a '..' component" in rejected["upload:outer.zip!../../escape.evtx"]
    assert "symlink member refused" in rejected["upload:outer.zip!link.evtx"]
    assert len(refusals(db)) == 2
    assert not any(settings.tmp_dir.iterdir())  # the temporary copies are gone
    assert not list(settings.home.rglob("escape.evtx"))


def test_an_unreadable_zip_upload_is_refused_with_a_reason(
    db: Database, settings: Settings, samples: list[Path]
) -> None:
    case = get_or_create_case(db, "up")[0]
    broken = io.BytesIO(b"PK\x03\x04" + b"\x00" * 64)
    result = ingest_uploads(db, settings, case, [(broken, "broken.zip")], actor="web:test")
    assert result.report.queued == []
    ((label, reason),) = result.report.rejected
    assert label == "upload:broken.zip" and "not a readable zip archive" in reason


CENTRAL_HEADER = struct.Struct("<4s4B4HL2L5H2L")


def wide_directory_zip(path: Path, entries: int, name_bytes: int) -> Path:
    """A zip whose central directory holds `entries` headers with names of `name_bytes`
    bytes (each pointing at one empty stored member): within the member bound, but a
    directory that `zipfile` needs ~entries * name_bytes of memory to read."""
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, 1, 0) + b"a"
    headers = bytearray()
    for n in range(entries):
        name = f"{n:08d}".encode().ljust(name_bytes, b"x")
        # signature, versions, flags..sizes (0), name length, extra/comment/disk/attrs (0)
        headers += CENTRAL_HEADER.pack(b"PK\x01\x02", 20, 3, 20, *[0] * 8, len(name), *[0] * 6)
        headers += name
    size, offset = len(headers), len(local)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, entries, entries, size, offset, 0)
    path.write_bytes(local + bytes(headers) + end)
    return path


def test_an_archive_that_exhausts_the_intake_memory_fails_in_its_own_process(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """The upload's intake runs in a child bounded by CASESCOPE_INTAKE_MEMORY_MB: an
    archive within every archive bound whose directory needs more memory than that fails
    there, with a clear error, and the calling process (the index owner in `serve`) lives."""
    bounded = settings.model_copy(update={"intake_memory_mb": 64})
    archive = wide_directory_zip(tmp_path / "wide.zip", 60_000, 1100)  # a 68 MB directory
    case = get_or_create_case(db, "up")[0]
    with archive.open("rb") as stream, pytest.raises(EvidenceError) as refused:
        ingest_uploads(db, bounded, case, [(stream, "wide.zip")], actor="web:test")
    assert "evidence intake stopped" in str(refused.value)
    assert "CASESCOPE_INTAKE_MEMORY_MB" in str(refused.value)
    assert not any(settings.tmp_dir.iterdir())  # the temporary copies are gone

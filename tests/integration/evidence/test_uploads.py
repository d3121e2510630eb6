"""Web uploads go through the same intake as `casescope ingest`: zips member by member."""

from __future__ import annotations

import io
from pathlib import Path

from casescope.config import Settings
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

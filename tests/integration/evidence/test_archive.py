"""Zip intake with the real intake and DB: nesting, unsafe members, bombs, damage, names."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from casescope.config import Settings
from casescope.evidence.intake import IntakeReport, ingest_paths
from casescope.model.db import Database
from casescope.model.enums import FileStatus
from casescope.services.cases import create_case
from casescope.services.doctor import verify_files
from tests.integration.evidence.conftest import (
    add_symlink,
    make_zip,
    mark_encrypted,
    refusals,
    rows_by_original,
    sha256,
)


def _ingest(db: Database, settings: Settings, *paths: Path) -> IntakeReport:
    return ingest_paths(db, settings, create_case(db, "zips"), list(paths))


def _assert_accounted(db: Database, settings: Settings) -> None:
    with db.session() as session:
        result = verify_files(session)
    assert result.ok, result.problems
    assert not list(settings.tmp_dir.iterdir()), "temporary copies were left behind"


def test_nested_zip_mixed_with_loose_files(
    db: Database, settings: Settings, samples: list[Path], tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    inner = make_zip(tmp_path / "inner.zip", {"deep/c.evtx": samples[2]})
    make_zip(tmp_path / "middle.zip", {"inner.zip": inner, "b.evtx": samples[1]})
    outer = make_zip(
        folder / "outer.zip",
        {"a.evtx": samples[0], "dir/middle.zip": tmp_path / "middle.zip", "empty/": b""},
    )
    (folder / "loose.evtx").write_bytes(samples[3].read_bytes())

    report = _ingest(db, settings, folder)

    rows = rows_by_original(db)
    label = str(outer.resolve())
    expected = {
        f"{label}!a.evtx": samples[0],
        f"{label}!dir/middle.zip!b.evtx": samples[1],
        f"{label}!dir/middle.zip!inner.zip!deep/c.evtx": samples[2],
        str((folder / "loose.evtx").resolve()): samples[3],
    }
    assert set(rows) == set(expected)
    for original, sample in expected.items():
        row = rows[original]
        assert row.status is FileStatus.QUEUED and row.sha256 == sha256(sample)
        assert Path(row.stored_path).read_bytes() == sample.read_bytes()
    assert len(report.queued) == 4 and not report.rejected
    _assert_accounted(db, settings)


UNSAFE = {
    "../evil.evtx": "'..' component",
    "a/../../evil.evtx": "'..' component",
    "..\\evil.evtx": "'..' component",
    "/tmp/evil.evtx": "absolute path",
    "C:\\Windows\\evil.evtx": "drive-letter path",
    "C:/Windows/evil.evtx": "drive-letter path",
    "\\\\server\\share\\evil.evtx": "UNC path",
}


@pytest.mark.parametrize("name", list(UNSAFE))
def test_zip_slip_members_are_refused_and_the_rest_taken_in(
    db: Database, settings: Settings, samples: list[Path], tmp_path: Path, name: str
) -> None:
    archive = make_zip(tmp_path / "slip.zip", {name: samples[0], "good.evtx": samples[1]})

    report = _ingest(db, settings, archive)

    label = str(archive.resolve())
    assert [path for path, _ in report.rejected] == [f"{label}!{name}"]
    reason = report.rejected[0][1]
    assert reason.startswith("unsafe member refused") and UNSAFE[name] in reason
    assert set(rows_by_original(db)) == {f"{label}!good.evtx"}
    assert refusals(db) == [f"{label}!{name}: {reason}"]
    assert not (tmp_path.parent / "evil.evtx").exists()
    _assert_accounted(db, settings)


def test_symlink_member_is_refused(
    db: Database, settings: Settings, samples: list[Path], tmp_path: Path
) -> None:
    archive = make_zip(tmp_path / "links.zip", {"good.evtx": samples[0]})
    add_symlink(archive, "link.evtx", "/etc/passwd")

    report = _ingest(db, settings, archive)

    assert len(report.queued) == 1
    [(path, reason)] = report.rejected
    assert path.endswith("links.zip!link.evtx") and "symlink member refused" in reason
    _assert_accounted(db, settings)


def test_high_ratio_member_is_refused_as_a_bomb(
    db: Database, settings: Settings, samples: list[Path], tmp_path: Path
) -> None:
    archive = make_zip(
        tmp_path / "bomb.zip", {"zeros.evtx": bytes(20 * 2**20), "good.evtx": samples[0]}
    )

    report = _ingest(db, settings, archive)

    [(path, reason)] = report.rejected
    assert path.endswith("bomb.zip!zeros.evtx")
    assert "zip bomb refused: compression ratio" in reason and "MAX_ARCHIVE_RATIO" in reason
    assert len(report.queued) == 1
    _assert_accounted(db, settings)


def test_too_many_members_stops_the_archive_with_a_clear_error(
    db: Database, samples: list[Path], tmp_path: Path
) -> None:
    settings = Settings(max_archive_members=50)
    members: dict[str, bytes | Path] = {f"m{n}.json": b'{"n": %d}\n' % n for n in range(60)}
    archive = make_zip(tmp_path / "many.zip", members)
    loose = tmp_path / "loose.evtx"
    loose.write_bytes(samples[0].read_bytes())

    report = _ingest(db, settings, archive, loose)

    [(path, reason)] = report.rejected
    assert path == str(archive.resolve())
    assert "60 members" in reason and "CASESCOPE_MAX_ARCHIVE_MEMBERS" in reason
    assert list(rows_by_original(db)) == [str(loose.resolve())]
    _assert_accounted(db, settings)


def test_expanded_size_bound_counts_nested_archives(
    db: Database, samples: list[Path], tmp_path: Path
) -> None:
    settings = Settings(max_archive_bytes=3 * samples[0].stat().st_size)
    inner = make_zip(tmp_path / "inner.zip", {f"{n}.evtx": samples[n] for n in range(3)})
    archive = make_zip(tmp_path / "outer.zip", {"first.evtx": samples[3], "inner.zip": inner})

    report = _ingest(db, settings, archive)

    assert len(report.queued) == 1  # first.evtx fits; the inner archive would go past
    [(path, reason)] = report.rejected
    assert path.endswith("outer.zip!inner.zip")
    assert "expands to" in reason and "CASESCOPE_MAX_ARCHIVE_BYTES" in reason
    _assert_accounted(db, settings)


def test_nesting_deeper_than_the_bound_is_refused(
    db: Database, samples: list[Path], tmp_path: Path
) -> None:
    settings = Settings(max_archive_depth=2)
    level3 = make_zip(tmp_path / "l3.zip", {"c.evtx": samples[2]})
    level2 = make_zip(tmp_path / "l2.zip", {"b.evtx": samples[1], "l3.zip": level3})
    archive = make_zip(tmp_path / "l1.zip", {"a.evtx": samples[0], "l2.zip": level2})

    report = _ingest(db, settings, archive)

    assert len(report.queued) == 2
    [(path, reason)] = report.rejected
    assert path.endswith("l1.zip!l2.zip!l3.zip") and "MAX_ARCHIVE_DEPTH (2)" in reason
    _assert_accounted(db, settings)


NAMES = [
    "my logs/Security & System.evtx",
    "журнал/événements ☃ 日本.evtx",
    "HOST01\\Windows\\System32\\winevt\\Logs\\Security.evtx",
]


def test_names_with_spaces_ampersands_unicode_and_backslashes_survive(
    db: Database, settings: Settings, samples: list[Path], tmp_path: Path
) -> None:
    archive = make_zip(
        tmp_path / "case files & ☃.zip", {name: samples[n] for n, name in enumerate(NAMES)}
    )

    report = _ingest(db, settings, archive)

    label = str(archive.resolve())
    assert set(rows_by_original(db)) == {f"{label}!{name}" for name in NAMES}
    assert len(report.queued) == 3 and not report.rejected
    _assert_accounted(db, settings)


def test_corrupt_archive_is_reported_and_loose_files_still_taken_in(
    db: Database, settings: Settings, samples: list[Path], tmp_path: Path
) -> None:
    whole = make_zip(tmp_path / "whole.zip", {"a.evtx": samples[0]}).read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(whole[: len(whole) // 2])
    loose = tmp_path / "loose.evtx"
    loose.write_bytes(samples[1].read_bytes())

    report = _ingest(db, settings, truncated, loose)

    [(path, reason)] = report.rejected
    assert path == str(truncated.resolve()) and "not a readable zip archive" in reason
    assert list(rows_by_original(db)) == [str(loose.resolve())]
    _assert_accounted(db, settings)


def test_damaged_and_encrypted_members_are_refused_the_rest_taken_in(
    db: Database, settings: Settings, samples: list[Path], tmp_path: Path
) -> None:
    archive = make_zip(
        tmp_path / "damaged.zip",
        {"bad.evtx": samples[0], "locked.evtx": samples[1], "good.evtx": samples[2]},
    )
    mark_encrypted(archive, "locked.evtx")
    with zipfile.ZipFile(archive) as zf:
        bad = zf.getinfo("bad.evtx")
    data = bytearray(archive.read_bytes())
    middle = bad.header_offset + 30 + len("bad.evtx") + bad.compress_size // 2
    data[middle : middle + 64] = bytes(64)  # corrupt the deflate stream
    archive.write_bytes(bytes(data))

    report = _ingest(db, settings, archive)

    reasons = dict(report.rejected)
    label = str(archive.resolve())
    assert "damaged or unreadable member" in reasons[f"{label}!bad.evtx"]
    assert "encrypted" in reasons[f"{label}!locked.evtx"]
    assert set(rows_by_original(db)) == {f"{label}!good.evtx"}
    _assert_accounted(db, settings)


def test_zip_is_recognised_by_content_not_name(
    db: Database, settings: Settings, samples: list[Path], tmp_path: Path
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.evtx", samples[0].read_bytes())
    disguised = tmp_path / "export.evtx"
    disguised.write_bytes(buffer.getvalue())
    not_a_zip = tmp_path / "notes.zip"
    not_a_zip.write_text('{"msg": "a JSON line, despite its name"}\n')

    report = _ingest(db, settings, disguised, not_a_zip)

    assert set(rows_by_original(db)) == {
        f"{disguised.resolve()}!x.evtx",
        str(not_a_zip.resolve()),
    }
    assert len(report.queued) == 2
    _assert_accounted(db, settings)


def test_duplicate_members_are_deduplicated(
    db: Database, settings: Settings, samples: list[Path], tmp_path: Path
) -> None:
    archive = make_zip(tmp_path / "dups.zip", {"a.evtx": samples[0], "copy/a.evtx": samples[0]})

    report = _ingest(db, settings, archive, samples[0])

    assert len(report.queued) == 1 and len(report.duplicates) == 2
    _assert_accounted(db, settings)


def test_an_archive_without_files_is_reported(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    archive = make_zip(tmp_path / "dirs-only.zip", {"a/": b"", "a/b/": b""})

    report = _ingest(db, settings, archive)

    assert report.rejected == [(str(archive.resolve()), "empty archive: no files")]
    _assert_accounted(db, settings)

"""Archives refused from their end records, before `zipfile` reads the central directory.

The forged archives declare 65,535 (ZIP64: a billion) entries over a central directory
that is garbage: `zipfile.ZipFile` refuses them as unreadable, so a refusal that names the
declared count proves the count was read first and the directory never loaded.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest

from casescope.config import Settings
from casescope.evidence.intake import IntakeReport, ingest_paths
from casescope.evidence.zip_directory import central_directory, count_entries
from casescope.model.db import Database
from casescope.services.cases import create_case
from tests.integration.evidence.conftest import make_zip, rows_by_original

GARBAGE = bytes(range(256)) * 8  # where the central directory should be
EOCD = struct.Struct("<4s4H2LH")
EOCD64 = struct.Struct("<4sQ2H2L4Q")
LOCATOR = struct.Struct("<4sLQL")


def forged(path: Path, entries: int, size: int) -> Path:
    """A file that starts like a zip and ends with an end record declaring `entries`
    entries in a directory of `size` bytes; what lies between is garbage."""
    body = b"PK\x03\x04" + GARBAGE
    path.write_bytes(body + EOCD.pack(b"PK\x05\x06", 0, 0, entries, entries, size, 4, 0))
    return path


def forged64(path: Path, entries: int, size: int) -> Path:
    """The same with ZIP64 end records: the classic record says "see ZIP64" (all ones)."""
    body = b"PK\x03\x04" + GARBAGE
    record = EOCD64.pack(b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, size, 4)
    locator = LOCATOR.pack(b"PK\x06\x07", 0, len(body), 1)
    eocd = EOCD.pack(b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    path.write_bytes(body + record + locator + eocd)
    return path


def _ingest(db: Database, settings: Settings, *paths: Path) -> IntakeReport:
    return ingest_paths(db, settings, create_case(db, "zips"), list(paths))


@pytest.mark.parametrize(
    ("forge", "entries", "shown"),
    [(forged, 0xFFFF, "65,535"), (forged64, 10**9, "1,000,000,000")],
)
def test_a_forged_entry_count_is_refused_before_the_directory_is_read(
    db: Database, samples: list[Path], tmp_path: Path, forge, entries, shown
) -> None:
    settings = Settings(max_archive_members=1000)  # the classic record counts to 65,535
    archive = forge(tmp_path / "forged.zip", entries, min(64 * entries, 0xFFFFFFF0))
    with pytest.raises(zipfile.BadZipFile):  # zipfile itself would only find it unreadable
        zipfile.ZipFile(archive)
    loose = tmp_path / "loose.evtx"
    loose.write_bytes(samples[0].read_bytes())

    report = _ingest(db, settings, archive, loose)

    [(path, reason)] = report.rejected
    assert path == str(archive.resolve())
    assert f"declares {shown} members" in reason and "CASESCOPE_MAX_ARCHIVE_MEMBERS" in reason
    assert list(rows_by_original(db)) == [str(loose.resolve())]


def test_a_forged_nested_archive_is_refused_and_its_siblings_taken_in(
    db: Database, settings: Settings, samples: list[Path], tmp_path: Path
) -> None:
    inner = forged64(tmp_path / "inner.zip", 10**9, 2**40)
    outer = make_zip(tmp_path / "outer.zip", {"a.evtx": samples[0], "inner.zip": inner})

    report = _ingest(db, settings, outer)

    [(path, reason)] = report.rejected
    assert path == f"{outer.resolve()}!inner.zip"
    assert "declares 1,000,000,000 members" in reason
    assert list(rows_by_original(db)) == [f"{outer.resolve()}!a.evtx"]


def test_an_archive_that_understates_its_entries_is_counted_by_its_headers(
    db: Database, tmp_path: Path
) -> None:
    """`zipfile` reads every header in the declared size, whatever the declared count: the
    headers are counted before it does, and the walk stops one past the bound."""
    archive = make_zip(tmp_path / "many.zip", {f"m{n}.json": b"{}\n" for n in range(60)})
    data = bytearray(archive.read_bytes())
    end = data.rindex(b"PK\x05\x06")
    data[end + 8 : end + 12] = struct.pack("<2H", 1, 1)  # "one entry"
    archive.write_bytes(bytes(data))
    with archive.open("rb") as f:
        directory = central_directory(f)
        assert directory is not None and directory.entries == 1
        assert count_entries(f, directory, 100) == 60
        assert count_entries(f, directory, 50) == 51

    report = _ingest(db, Settings(max_archive_members=50), archive)

    [(_, reason)] = report.rejected
    assert "holds more than 50 members" in reason

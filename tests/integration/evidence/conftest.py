"""Zip archives built in tmp_path from the real attack samples."""

from __future__ import annotations

import hashlib
import stat
import struct
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from casescope.model.db import Database
from casescope.model.enums import AuditAction
from casescope.model.tables import AuditRecord, EvidenceFile
from tests.e2e.conftest import cli

__all__ = ["cli"]  # the `casescope` command in a fresh home, for test_archive_cli


@pytest.fixture(scope="session")
def samples(attack_samples: Path) -> list[Path]:
    """Five small, distinct EVTX samples."""
    small = sorted(p for p in attack_samples.rglob("*.evtx") if p.stat().st_size < 100_000)
    return small[:5]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_zip(path: Path, members: dict[str, bytes | Path]) -> Path:
    """A deflated zip holding `members` (name -> bytes or a file to copy) under raw names."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)  # raw: ZipInfo keeps '..', '/', '\\' and drives
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data.read_bytes() if isinstance(data, Path) else data)
    return path


def add_symlink(path: Path, name: str, target: str) -> None:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # unix
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(info, target)


def mark_encrypted(path: Path, name: str) -> None:
    """Set the 'encrypted' flag of member `name` in its local and central headers."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    data = bytearray(path.read_bytes())
    local = info.header_offset
    assert data[local : local + 4] == b"PK\x03\x04"
    data[local + 6 : local + 8] = struct.pack("<H", info.flag_bits | 1)
    raw = name.encode()
    central = data.index(b"PK\x01\x02")
    while data[central + 46 : central + 46 + len(raw)] != raw:
        central = data.index(b"PK\x01\x02", central + 4)
    data[central + 8 : central + 10] = struct.pack("<H", info.flag_bits | 1)
    path.write_bytes(bytes(data))


def rows_by_original(db: Database) -> dict[str, EvidenceFile]:
    with db.session() as session:
        return {f.original_path: f for f in session.scalars(select(EvidenceFile))}


def refusals(db: Database) -> list[str]:
    with db.session() as session:
        return list(
            session.scalars(
                select(AuditRecord.detail).where(AuditRecord.action == AuditAction.INTAKE_REFUSED)
            )
        )

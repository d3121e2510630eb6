"""`phases.canonical`, the row form verify hashes and the copy compares: equal for the same
row read from SQLite or PostgreSQL, different for any changed compared field; its path
shortcut gives what pathlib gives."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from casescope.migrate.phases import canonical, relative_path
from casescope.model.enums import FileType, IndexState
from casescope.model.tables import EvidenceFile, Job
from casescope.model.users import User

HOME = Path("/srv/casescope")
TABLE = EvidenceFile.__table__


@pytest.mark.parametrize(
    "value",
    [
        "/srv/casescope/evidence/1/ab.evtx",
        "/srv/casescope/evidence//1/ab.evtx",
        "/srv/casescope/./evidence/ab.evtx",
        "/srv/casescope/evidence/",
        "/srv/casescope/evidence/.",
        "/srv/casescope/../other/ab.evtx",
        "/srv/casescope",
        "/srv/casescope2/evidence/ab.evtx",
        "/elsewhere/ab.evtx",
        "evidence/ab.evtx",
    ],
)
def test_relative_path_is_what_pathlib_gives(value: str) -> None:
    path = Path(value)
    expected = path.relative_to(HOME).as_posix() if path.is_relative_to(HOME) else value
    assert relative_path(value, HOME) == expected


def _file_row(**changes: object) -> dict:
    row = {column.name: None for column in TABLE.columns}
    row.update(
        id=7,
        case_id=1,
        sha256="ab" * 32,
        size_bytes=1024,
        original_path="Security.evtx",
        stored_path=str(HOME / "evidence" / "1" / "ab.evtx"),
        index_state=IndexState.LOADED,
        created_at=datetime(2026, 12, 7, 9, 30, 1, 250_000),  # SQLite: naive, in UTC
    )
    row.update(changes)
    return row


def test_the_same_row_from_sqlite_and_postgresql_is_the_same() -> None:
    naive = _file_row()
    aware = _file_row(created_at=datetime(2026, 12, 7, 9, 30, 1, 250_000, tzinfo=UTC))
    paris = timezone(timedelta(hours=1))
    shifted = _file_row(created_at=datetime(2026, 12, 7, 10, 30, 1, 250_000, tzinfo=paris))
    moved_home = _file_row(stored_path="/data/new/evidence/1/ab.evtx")
    one = canonical(TABLE, naive, HOME)
    assert one == canonical(TABLE, aware, HOME) == canonical(TABLE, shifted, HOME)
    assert one == canonical(TABLE, moved_home, Path("/data/new"))
    # volatile columns are re-derived on the target: not compared
    assert one == canonical(TABLE, _file_row(index_state=IndexState.NONE), HOME)


@pytest.mark.parametrize(
    "change",
    [
        {"sha256": "cd" * 32},
        {"size_bytes": 1025},
        {"original_path": "System.evtx"},
        {"stored_path": str(HOME / "evidence" / "2" / "ab.evtx")},
        {"created_at": datetime(2026, 12, 7, 9, 30, 1, 250_001)},
        {"created_at": None},
    ],
)
def test_any_changed_field_changes_it(change: dict) -> None:
    assert canonical(TABLE, _file_row(**change), HOME) != canonical(TABLE, _file_row(), HOME)


def test_floats_enums_and_flags_keep_their_identity() -> None:
    """A float NaN is not a missing value (JSON alone would make both null); a flag is not
    its opposite; an enum is its value."""
    jobs = Job.__table__
    base = {column.name: None for column in jobs.columns}
    float_column = next(c.name for c in jobs.columns if c.type.python_type is float)
    nan, missing = {**base, float_column: math.nan}, {**base, float_column: None}
    assert canonical(jobs, nan, HOME) != canonical(jobs, missing, HOME)
    users = User.__table__
    row = {column.name: None for column in users.columns}
    flag = next(c.name for c in users.columns if c.type.python_type is bool)
    yes, no = {**row, flag: True}, {**row, flag: False}
    assert canonical(users, yes, HOME) != canonical(users, no, HOME)
    assert b'"loaded"' not in canonical(TABLE, _file_row(), HOME)  # index_state: volatile
    assert b'"evtx"' in canonical(TABLE, _file_row(file_type=FileType.EVTX), HOME)

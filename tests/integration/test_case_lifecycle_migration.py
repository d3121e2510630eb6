"""Migration 0025 on a DB made before it: cases become open with no owner, files a cancel
marked failed ("cancelled: ...") become cancelled, other failures stay failed; and back."""

from __future__ import annotations

from sqlalchemy import text

from casescope.config import Settings
from casescope.model.db import Database, make_engine
from casescope.model.enums import CaseStatus, FileStatus
from casescope.services.case_lifecycle import case_settings
from tests.integration.migrations import migrate as _migrate

ERRORS = {
    1: "cancelled: operation 3 cancelled by web:alice",
    2: "cancelled: operation 4 cancelled by cli (after 2 attempts; last error: boom)",
    3: "evidence file is missing: /x",  # a real failure
    4: "a log line about cancelled: work",  # not written by a cancel
}


def _statuses(settings: Settings) -> dict[int, str]:
    engine = make_engine(settings)
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT id, status FROM evidence_files")).all()
    engine.dispose()
    return dict(rows)  # type: ignore[arg-type]


def test_old_cases_open_and_cancelled_files_apart(settings: Settings) -> None:
    _migrate(settings, "0020")
    engine = make_engine(settings)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO cases (id, name, description, created_at) "
                "VALUES (1, 'old', '', '2026-01-01 00:00:00')"
            )
        )
        for file_id, error in ERRORS.items():
            conn.execute(
                text(
                    "INSERT INTO evidence_files (id, case_id, sha256, size_bytes, file_type, "
                    "original_path, stored_path, status, hidden, index_state, "
                    "index_generation, events_estimated, events_processed, event_count, "
                    "field_map, warnings, error, created_at) VALUES (:id, 1, :sha, 1, 'evtx', "
                    "'a', 'b', 'failed', 0, 'none', 0, 0, 0, 0, '', '', :error, "
                    "'2026-01-01 00:00:00')"
                ),
                {"id": file_id, "sha": f"{file_id:064d}", "error": error},
            )
    engine.dispose()
    db = Database(settings)  # upgrades to the newest revision
    settings_of_old = case_settings(db, 1)
    assert (settings_of_old.status, settings_of_old.owner) == (CaseStatus.OPEN, None)
    db.dispose()
    assert _statuses(settings) == {
        1: FileStatus.CANCELLED,
        2: FileStatus.CANCELLED,
        3: FileStatus.FAILED,
        4: FileStatus.FAILED,
    }
    _migrate(settings, "0020", down=True)
    assert set(_statuses(settings).values()) == {FileStatus.FAILED}

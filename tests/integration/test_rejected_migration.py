"""Migration 0023 on a DB made before it: files intake refused as not evidence (stored as
"failed" then) become "rejected"; files that failed otherwise stay failed."""

from __future__ import annotations

from sqlalchemy import text

from casescope.config import Settings
from casescope.model.db import Database, make_engine
from casescope.services.cases import list_cases
from tests.integration.migrations import migrate as _migrate

NOT_EVIDENCE = "not recognised as evidence (EVTX, NDJSON/JSONL or CSV) by its content"
#: (name, status before, error) -> status after.
FILES = {
    ("README.md", "failed", NOT_EVIDENCE): "rejected",
    ("broken.evtx", "failed", "EVTX header is damaged"): "failed",
    ("good.evtx", "completed", None): "completed",
}


def _statuses(settings: Settings) -> dict[str, str]:
    engine = make_engine(settings)
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT original_path, status FROM evidence_files")).all()
    engine.dispose()
    return dict(rows)  # type: ignore[arg-type]


def _insert_files(settings: Settings) -> None:
    engine = make_engine(settings)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO cases (id, name, description, created_at) "
                "VALUES (1, 'old', '', '2026-01-01 00:00:00')"
            )
        )
        for n, (name, status, error) in enumerate(FILES):
            conn.execute(
                text(
                    "INSERT INTO evidence_files (case_id, sha256, size_bytes, file_type, "
                    "original_path, stored_path, status, hidden, index_state, "
                    "index_generation, events_estimated, events_processed, event_count, "
                    "field_map, warnings, error, created_at) "
                    "VALUES (1, :sha, 10, 'unknown', :name, '/x', :status, 0, 'none', 0, 0, 0, 0, "
                    "'', '', :error, '2026-01-01')"
                ),
                {"sha": f"{n:064d}", "name": name, "status": status, "error": error},
            )
    engine.dispose()


def test_files_refused_as_not_evidence_become_rejected(settings: Settings) -> None:
    _migrate(settings, "0020")
    _insert_files(settings)
    db = Database(settings)  # upgrades to the newest revision
    assert _statuses(settings) == {name: after for (name, _, _), after in FILES.items()}
    [case] = list_cases(db)
    assert (case.failed, case.rejected) == (1, 1)
    db.dispose()
    _migrate(settings, "0020", down=True)
    assert _statuses(settings) == {name: before for (name, before, _) in FILES}

"""Migration 0021 on a DB made before it: the notes table arrives empty beside the marks that
were there, takes notes, and goes again on a downgrade (the marks stay)."""

from __future__ import annotations

from sqlalchemy import inspect, text

from casescope.config import Settings
from casescope.model.db import Database, make_engine
from casescope.services.cases import get_or_create_case
from casescope.services.notes import add_note, event_notes
from tests.integration.migrations import migrate as _migrate


def _tables(settings: Settings) -> set[str]:
    engine = make_engine(settings)
    names = set(inspect(engine).get_table_names())
    engine.dispose()
    return names


def test_notes_table_up_and_down(settings: Settings) -> None:
    _migrate(settings, "0020")
    assert "event_notes" not in _tables(settings)
    engine = make_engine(settings)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO cases (name, description, created_at) VALUES ('c', '', :at)"),
            {"at": "2026-01-01 00:00:00"},
        )
        conn.execute(
            text(
                "INSERT INTO event_marks (case_id, file_id, seq, kind, label, actor, created_at) "
                "VALUES (1, 1, 0, 'tag', 'kept', 'ana', '2026-01-01 00:00:00')"
            )
        )
    engine.dispose()
    db = Database(settings)  # upgrades to the newest revision
    case_id = get_or_create_case(db, "c")[0].id
    note = add_note(db, case_id, (1, 0), "ana", "after the upgrade")
    assert [n.text for n in event_notes(db, case_id, (1, 0))] == [note.text]
    db.dispose()
    _migrate(settings, "0020", down=True)
    assert "event_notes" not in _tables(settings)
    engine = make_engine(settings)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT label FROM event_marks")).scalars().all() == ["kept"]
    engine.dispose()

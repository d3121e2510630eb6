"""Migration 0022 on a DB made before it (saved searches stay their owner's alone; the story
table appears and goes again on downgrade), and the story's order on the real SQLite DB."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text

from casescope.config import Settings
from casescope.errors import CasescopeError, NotFoundError
from casescope.model.db import Database, make_engine
from casescope.model.users import Role
from casescope.services import saved_searches as ss
from casescope.services import story as st
from casescope.services.cases import create_case
from casescope.services.users import create_user
from tests.integration.migrations import migrate as _migrate


def _columns(settings: Settings, table: str) -> set[str]:
    engine = make_engine(settings)
    try:
        found = inspect(engine)
        if not found.has_table(table):
            return set()
        return {c["name"] for c in found.get_columns(table)}
    finally:
        engine.dispose()


def test_saved_searches_of_before_stay_personal_and_the_story_table_comes_and_goes(
    settings: Settings,
) -> None:
    _migrate(settings, "0020")
    engine = make_engine(settings)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, username, password_hash, role, active, created_at, "
                "must_change_password, timezone) VALUES "
                "(1, 'ann', 'x', 'analyst', 1, '2026-01-01', 0, 'UTC'), "
                "(2, 'bob', 'x', 'analyst', 1, '2026-01-01', 0, 'UTC')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO cases (id, name, description, created_at) "
                "VALUES (1, 'c', '', '2026-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO saved_searches (user_id, case_id, name, params, saved, created_at) "
                "VALUES (1, 1, 'old', '{\"q\": \"x\"}', 1, '2026-01-01')"
            )
        )
    engine.dispose()
    assert "shared" not in _columns(settings, "saved_searches")
    db = Database(settings)  # upgrades to the newest revision
    (old,) = ss.list_saved(db, ss.Owner(1, 1))
    assert old.name == "old" and not old.shared and old.owner == "ann"
    assert ss.list_saved(db, ss.Owner(2, 1)) == []  # not shared by the upgrade
    assert "position" in _columns(settings, "story_items")
    db.dispose()
    _migrate(settings, "0020", down=True)
    assert _columns(settings, "story_items") == set()
    assert "shared" not in _columns(settings, "saved_searches")


AT = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def test_story_positions_stay_dense_and_the_order_must_name_every_item(
    settings: Settings,
) -> None:
    db = Database(settings)
    create_user(db, "ann", "correct horse battery", Role.ANALYST)
    case = create_case(db, "story case").id
    events = st.add_events(db, case, [(1, 5, AT), (1, 3, AT), (1, 5, AT)], "ann")
    assert [(e.file_id, e.seq) for e in events] == [(1, 5), (1, 3)]  # once each
    note = st.add_text(db, case, "between", "ann", position=1)
    assert [e.kind.value for e in st.story(db, case)] == ["event", "text", "event"]
    st.move(db, case, note.id, 99)  # past the end: last
    st.remove(db, case, events[0].id)
    assert [(e.position, e.kind.value) for e in st.story(db, case)] == [(0, "event"), (1, "text")]
    with pytest.raises(CasescopeError):
        st.reorder(db, case, [note.id])  # leaves an item out
    other = create_case(db, "other case").id
    with pytest.raises(LookupError):
        st.remove(db, other, note.id)  # another case's item
    with pytest.raises(NotFoundError):
        st.remove(db, other + 1, note.id)  # no such case
    with pytest.raises(CasescopeError):
        st.add_text(db, case, "x" * (st.MAX_TEXT + 1), "ann")
    db.dispose()


def test_a_story_is_bounded(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    db = Database(settings)
    case = create_case(db, "full case").id
    monkeypatch.setattr(st, "MAX_ITEMS", 3)
    st.add_events(db, case, [(1, s, AT) for s in range(3)], "ann")
    with pytest.raises(st.StoryFull):
        st.add_text(db, case, "one more", "ann")
    assert len(st.story(db, case)) == 3
    db.dispose()

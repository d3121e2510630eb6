"""Migration 0020 on a DB made before it: audit rows written under the old action names are
renamed to `noun.verb`, the others are kept as they were, and the column takes only actions."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError

from casescope.config import Settings
from casescope.model.db import Database, make_engine
from casescope.model.enums import LEGACY_AUDIT_ACTIONS, AuditAction
from casescope.model.tables import AuditRecord
from casescope.services.audit import audit_rows
from tests.integration.migrations import migrate as _migrate

#: Rows as casescope wrote them before 0020, and what each is called after.
OLD_ROWS = {
    **{old: new.value for old, new in LEGACY_AUDIT_ACTIONS.items()},
    "case.create": "case.create",
    "queue.full": "queue.full",
    "user.login_failed": "user.login_failed",
    "pool.failed": "pool.failed",
}


def _stored(settings: Settings) -> dict[str, str]:
    engine = make_engine(settings)
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT detail, action FROM audit")).all()
    engine.dispose()
    return dict(rows)  # type: ignore[arg-type]


def test_old_action_names_are_renamed_and_others_kept(settings: Settings) -> None:
    _migrate(settings, "0019")
    engine = make_engine(settings)
    with engine.begin() as conn:
        for old in OLD_ROWS:
            conn.execute(
                text(
                    "INSERT INTO audit (at, actor, action, ok, duration_ms, events, detail) "
                    "VALUES ('2026-01-01 00:00:00', 'cli', :action, 1, 0, 0, :detail)"
                ),
                {"action": old, "detail": f"was {old}"},
            )
    engine.dispose()
    db = Database(settings)  # upgrades to the newest revision
    assert _stored(settings) == {f"was {old}": new for old, new in OLD_ROWS.items()}
    # every row reads back as an AuditAction, and the old names still find them
    rows = audit_rows(db, 100, action=AuditAction.parse("intake_refused"))
    assert [r["detail"] for r in rows] == ["was intake_refused"]
    assert {r["action"] for r in audit_rows(db, 100)} == set(OLD_ROWS.values())
    db.dispose()
    _migrate(settings, "0019", down=True)
    assert _stored(settings) == {f"was {old}": old for old in OLD_ROWS}


def test_the_action_column_takes_only_audit_actions(settings: Settings) -> None:
    db = Database(settings)
    with db.session() as session:
        session.add(AuditRecord(action=AuditAction.CASE_CREATE, detail="fine"))
    with pytest.raises(StatementError), db.session() as session:
        session.add(AuditRecord(action="intake_refused", detail="an old name"))
    with db.read() as session:
        assert session.scalars(select(AuditRecord.action)).all() == [AuditAction.CASE_CREATE]
    db.dispose()

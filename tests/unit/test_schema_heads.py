"""`SCHEMA_HEADS` is what the migration scripts say, and a database at them opens without
Alembic while one behind them is migrated."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from casescope.config import Settings
from casescope.model.db import (
    MIGRATIONS_DIR,
    SCHEMA_HEADS,
    Database,
    make_engine,
    schema_revisions,
)
from tests.integration.migrations import migrate


def test_schema_heads_are_the_scripts_heads() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert frozenset(ScriptDirectory.from_config(config).get_heads()) == SCHEMA_HEADS


def test_a_database_behind_the_heads_is_migrated(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    migrate(settings, "0020")
    engine = make_engine(settings)
    assert schema_revisions(engine) == {"0020"} != SCHEMA_HEADS
    engine.dispose()
    db = Database(settings)
    assert schema_revisions(db.engine) == SCHEMA_HEADS
    db.dispose()

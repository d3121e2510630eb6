"""`SCHEMA_HEADS` is what the migration scripts say, and a database at them opens without
Alembic while one behind them is migrated."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from casescope.config import Settings
from casescope.model.db import MIGRATIONS_DIR, SCHEMA_HEADS, Database, schema_revisions


def test_schema_heads_are_the_scripts_heads() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert frozenset(ScriptDirectory.from_config(config).get_heads()) == SCHEMA_HEADS


def test_a_database_behind_the_heads_is_migrated(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    db = Database(settings)
    assert schema_revisions(db.engine) == SCHEMA_HEADS
    db.dispose()
    with sqlite3.connect(settings.db_path) as connection:
        # as before 0026: no checkpoint table, at 0020
        connection.execute("DROP TABLE migration_checkpoints")
        connection.execute("UPDATE alembic_version SET version_num = '0020'")
    db = Database(settings)  # 0026 runs: the schema is at head
    assert schema_revisions(db.engine) == SCHEMA_HEADS
    db.dispose()

"""Moving a test database to a given Alembic revision, up or down (the migration tests)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from casescope.config import Settings
from casescope.model.db import MIGRATIONS_DIR, make_engine


def migrate(settings: Settings, revision: str, *, down: bool = False) -> None:
    """Upgrade (or with `down`, downgrade) the settings' database to `revision`."""
    engine = make_engine(settings)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)
    engine.dispose()

"""Migration 0011 on a DB made before it: users keep logging in, tokens keep working (hashes
kept, full `write` scope as before), and permanent tokens get an expiry."""

from __future__ import annotations

import time

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from casescope.config import Settings
from casescope.model.db import MIGRATIONS_DIR, Database, make_engine
from casescope.model.users import TokenScope
from casescope.services.auth import keyed_hash
from casescope.services.tokens import list_tokens, verify_token
from casescope.services.users import authenticate, hash_password

SECRET = "x" * 48


def _upgrade(settings: Settings, revision: str) -> None:
    engine = make_engine(settings)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    engine.dispose()


def test_old_users_and_permanent_tokens_survive_the_upgrade(settings: Settings) -> None:
    _upgrade(settings, "0009")
    engine = make_engine(settings)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, username, password_hash, role, active, created_at) "
                "VALUES (1, 'old', :hash, 'analyst', 1, '2026-01-01 00:00:00')"
            ),
            {"hash": hash_password("an old password")},
        )
        conn.execute(
            text(
                "INSERT INTO api_tokens (user_id, name, token_hash, created_at, expires_at, "
                "revoked) VALUES (1, 'forever', :hash, 0, NULL, 0)"
            ),
            {"hash": keyed_hash(SECRET, "cs_old_token")},
        )
    engine.dispose()
    db = Database(settings)  # upgrades to the newest revision
    user = authenticate(db, "old", "an old password")
    assert user is not None and not user.must_change_password and user.last_login_at is None
    grant = verify_token(db, SECRET, "cs_old_token")
    assert grant is not None and grant.scope is TokenScope.WRITE
    [token] = list_tokens(db, None)
    assert token.expires_at is not None
    assert 89 * 86400 < token.expires_at - time.time() <= 90 * 86400
    db.dispose()

"""A new database is given today's schema at once (`db.create_schema`: the ORM tables, the
jobs' partial index, the Alembic stamp) instead of running every migration. That is only
right while the two give the same database: each test here builds one of each, on SQLite and
on PostgreSQL, and compares what the database itself reports (columns with their types,
nullability and defaults, keys, indexes with their predicates, foreign keys)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text

from casescope.config import Settings
from casescope.model.db import SCHEMA_HEADS, Database, schema_revisions
from tests.integration.migrations import migrate
from tests.postgres import PostgresCluster


def _table(inspector: Any, name: str) -> dict[str, object]:
    columns = {
        c["name"]: (str(c["type"]), c["nullable"], c["default"])
        for c in inspector.get_columns(name)
    }
    indexes = {
        i["name"]: (
            tuple(i["column_names"]),
            bool(i["unique"]),
            {k: str(v) for k, v in (i.get("dialect_options") or {}).items()},
        )
        for i in inspector.get_indexes(name)
    }
    foreign = _foreign_keys(inspector, name)
    unique = sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(name))
    key = tuple(inspector.get_pk_constraint(name)["constrained_columns"])
    return {
        "columns": columns,
        "indexes": indexes,
        "foreign": foreign,
        "unique": unique,
        "key": key,
    }


def _foreign_keys(inspector: Any, name: str) -> list[tuple[object, ...]]:
    """(columns, table, columns, ON DELETE) of each key. SQLite's own list, not SQLAlchemy's
    reading of the CREATE TABLE text, which misses the action of an inline REFERENCES (how
    a migration adds a key to a table there)."""
    if inspector.dialect.name == "sqlite":
        rows = inspector.bind.execute(text(f"PRAGMA foreign_key_list({name})")).mappings()
        action = {"NO ACTION": None}
        return sorted(
            ((r["from"],), r["table"], (r["to"],), action.get(r["on_delete"], r["on_delete"]))
            for r in rows
        )
    return sorted(
        (
            tuple(f["constrained_columns"]),
            f["referred_table"],
            tuple(f["referred_columns"]),
            (f.get("options") or {}).get("ondelete"),
        )
        for f in inspector.get_foreign_keys(name)
    )


def _index_predicates(connection: Any) -> dict[str, str]:
    """Each index's own definition as the database keeps it (a partial index's WHERE)."""
    if connection.dialect.name == "sqlite":
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    else:
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
    return {name: " ".join(sql.split()) for name, sql in connection.execute(text(query))}


def _schema(url: str) -> dict[str, object]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            inspector = inspect(connection)
            tables = {name: _table(inspector, name) for name in inspector.get_table_names()}
            return {
                "tables": tables,
                "indexes": _index_predicates(connection),
                "revisions": set(schema_revisions(engine)),
            }
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_new_database_gets_the_schema_the_migrations_give(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    urls: dict[str, str] = {}
    for how in ("created", "migrated"):
        home = tmp_path / how
        if backend == "postgresql":
            cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
            settings = Settings(home=home, database_url=cluster.database())
        else:
            settings = Settings(home=home)
        if how == "created":
            Database(settings).dispose()
        else:
            migrate(settings, "heads")
        urls[how] = settings.db_url

    created, migrated = _schema(urls["created"]), _schema(urls["migrated"])

    assert created["revisions"] == migrated["revisions"] == set(SCHEMA_HEADS)
    assert "uq_jobs_active_file" in created["indexes"]
    assert created["indexes"] == migrated["indexes"]
    assert sorted(created["tables"]) == sorted(migrated["tables"])  # type: ignore[arg-type]
    for name, table in created["tables"].items():  # type: ignore[attr-defined]
        assert table == migrated["tables"][name], name  # type: ignore[index]

"""Engine and session setup for the metadata DB, and schema migration (Alembic).

SQLite runs in WAL mode and every transaction starts with ``BEGIN IMMEDIATE``: writers queue
on the busy timeout instead of failing with "database is locked" when a read transaction later
tries to write (the predecessor's lock errors). PostgreSQL needs none of this.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from casescope.config import Settings

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: The newest Alembic revisions (tests/unit/test_schema_heads.py keeps this equal to the
#: migration scripts' heads). A database already at them is opened without loading Alembic,
#: which with its scripts is most of a short command's start-up.
SCHEMA_HEADS = frozenset({"0030"})
#: The key of the PostgreSQL advisory lock a migration holds (any fixed bigint): one at a time.
MIGRATION_LOCK = int.from_bytes(b"CSMIGRAT", "big") - 2**63
#: Values bound in one `IN (...)`: SQLite as built upstream allows 32,766 parameters per
#: statement and PostgreSQL 65,535, so a list of ids from a request is bound in slices.
IN_CHUNK = 500
T = TypeVar("T")


def in_chunks(values: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """`values` in slices of at most `size`, for `column.in_(...)`."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _configure_sqlite(engine: Engine, *, immediate: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # the driver must not BEGIN on its own
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _end_idle_transactions(engine: Engine, seconds: float) -> None:
    """PostgreSQL ends a session of this engine left idle inside a transaction for
    `seconds`, and with it the transaction and its row locks.

    A process that stops mid-transaction (SIGSTOP, a frozen VM) would otherwise hold the
    rows it locked for as long as it stays stopped, and everyone who re-queues or claims
    them waits behind it, past any lease."""
    milliseconds = max(1, round(seconds * 1000))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        with dbapi_conn.cursor() as cursor:
            cursor.execute(f"SET idle_in_transaction_session_timeout = {milliseconds}")
        dbapi_conn.commit()  # a session setting, not undone by the pool's rollbacks


#: SQLSTATE classes of a connection the server ended or lost: 08 connection exception,
#: 57 operator intervention (57P01 admin shutdown, 57P02 crash shutdown, ...).
LOST_CONNECTION_CLASSES = ("08", "57")


def connection_lost(dbapi_error: BaseException, driver_operational: type[BaseException]) -> bool:
    """Whether a PostgreSQL driver error means the connection it came on is no longer usable.

    The driver's own errors (no SQLSTATE, e.g. "cannot exit pipeline mode while busy" when a
    shutdown arrives mid `executemany`) and the server's 08/57 classes; not a statement's
    failure, a conflict (40) or a cancelled query (57014 is the one class-57 survivor)."""
    if not isinstance(dbapi_error, driver_operational):
        return False
    sqlstate = getattr(dbapi_error, "sqlstate", None)
    if sqlstate is None:
        return True
    return sqlstate != "57014" and sqlstate[:2] in LOST_CONNECTION_CLASSES


def _discard_lost_connections(engine: Engine) -> None:
    """A connection the server ended while psycopg was in pipeline mode is not yet marked
    broken, so SQLAlchemy would hand it back to the pool, whose reset then fails with a
    logged traceback; marking the error a disconnect discards the connection instead."""
    operational = engine.dialect.dbapi.OperationalError  # type: ignore[union-attr]

    @event.listens_for(engine, "handle_error")
    def _on_error(context):  # type: ignore[no-untyped-def]
        if not context.is_disconnect and connection_lost(context.original_exception, operational):
            context.is_disconnect = True


def make_engine(
    settings: Settings, *, read_only: bool = False, idle_transaction_seconds: float | None = None
) -> Engine:
    """An engine; on SQLite, writers BEGIN IMMEDIATE and `read_only` ones plain BEGIN. On
    PostgreSQL, `idle_transaction_seconds` bounds how long a session may sit idle inside a
    transaction before the server ends it (`_end_idle_transactions`)."""
    url = settings.db_url
    if url.startswith("sqlite"):
        settings.home_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60})
        _configure_sqlite(engine, immediate=not read_only)
        return engine
    engine = create_engine(url, pool_pre_ping=True)
    _discard_lost_connections(engine)
    if idle_transaction_seconds is not None:
        _end_idle_transactions(engine, idle_transaction_seconds)
    return engine


def schema_revisions(engine: Engine) -> frozenset[str]:
    """The revisions the database is at (none for a new database)."""
    try:
        with engine.connect() as connection:
            return _read_revisions(connection)
    except (OperationalError, ProgrammingError):  # no table yet
        return frozenset()


def _read_revisions(connection: Connection) -> frozenset[str]:
    rows = connection.execute(text("SELECT version_num FROM alembic_version"))
    return frozenset(row[0] for row in rows)


def _revisions_on(connection: Connection) -> frozenset[str]:
    """The revisions as `connection` sees them inside its transaction; none when the database
    has no version table (looked up first: a failed query would end a PostgreSQL transaction;
    outside one, `schema_revisions` makes one query, the cost of every command's start)."""
    if not inspect(connection).has_table("alembic_version"):
        return frozenset()
    return _read_revisions(connection)


def migrate(engine: Engine, reader: Engine | None = None) -> None:
    """Bring the schema to every newest Alembic revision (idempotent; features may add heads).
    `reader`: an engine whose transactions only read (SQLite's plain BEGIN), for the first
    look, so that a process finding the schema current never queues behind a writer."""
    if schema_revisions(reader or engine) == SCHEMA_HEADS:
        return
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # a long migration is not a stopped process
            connection.execute(text("SET LOCAL idle_in_transaction_session_timeout = 0"))
            # Processes that start together on a new database (`ingest` and the pool it
            # starts, team hosts) take turns: the next finds the schema at its heads. On
            # SQLite the transaction's BEGIN IMMEDIATE does the same.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        # The usual turn of the process that waited: the other one has migrated, and loading
        # Alembic and its scripts to find nothing to do would cost a third of a second of CPU
        # while `ingest`, its pool and the workers' template all start on two cores.
        revisions = _revisions_on(connection)
        if revisions == SCHEMA_HEADS:
            return
        if revisions or _has_tables(connection):
            _upgrade(connection)
        else:
            create_schema(connection)


def _has_tables(connection: Connection) -> bool:
    from casescope.model.tables import Base

    return bool(set(inspect(connection).get_table_names()) & set(Base.metadata.tables))


def create_schema(connection: Connection) -> None:
    """Give a new database today's schema at once and stamp it at SCHEMA_HEADS: what the
    migrations would leave (tests/integration/test_schema_drift.py compares the two), in a
    tenth of their time, which a first `ingest` waits for."""
    import casescope.model  # noqa: F401  (every table in Base.metadata)
    from casescope.model.tables import ACTIVE_FILE_INDEX, Base

    Base.metadata.create_all(connection)
    connection.execute(text(ACTIVE_FILE_INDEX))
    version = Table(
        "alembic_version",  # as Alembic makes it (MigrationContext._version)
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
    )
    version.create(connection)
    connection.execute(version.insert(), [{"version_num": head} for head in sorted(SCHEMA_HEADS)])
    logger.info("created a new metadata database at revision %s", ", ".join(sorted(SCHEMA_HEADS)))


def _upgrade(connection: Connection) -> None:
    # Alembic and its scripts load only when there is something to migrate.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, "heads")


class Database:
    """One engine plus its session factory; create one per process. A process that holds
    jobs (a worker, a pool) passes `idle_transaction_seconds`: its lease (`make_engine`)."""

    def __init__(
        self,
        settings: Settings,
        *,
        run_migrations: bool = True,
        idle_transaction_seconds: float | None = None,
    ) -> None:
        self.settings = settings
        self.engine = make_engine(settings, idle_transaction_seconds=idle_transaction_seconds)
        is_sqlite = self.engine.dialect.name == "sqlite"
        self._read_engine = make_engine(settings, read_only=True) if is_sqlite else self.engine
        if run_migrations:
            migrate(self.engine, self._read_engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self._read_engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session: on SQLite it takes no write lock, so it never delays workers."""
        with self._read_sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
        self._read_engine.dispose()

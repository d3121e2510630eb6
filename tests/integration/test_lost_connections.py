"""A PostgreSQL connection the server ended is discarded, never handed back to the pool.

psycopg marks a connection broken only once it has seen the socket close; a shutdown that
arrives while it is in pipeline mode (`executemany`) surfaces first as "cannot exit pipeline
mode while busy" on a connection that still looks good, and the pool's reset of it then
failed with a logged traceback (CI, tests/faults/test_pg_restart.py). `make_engine` marks
such errors disconnects, so the connection is invalidated instead."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError

from casescope.config import Settings
from casescope.model.db import connection_lost, make_engine
from tests.postgres import PostgresCluster


@pytest.mark.parametrize(
    ("error", "lost"),
    [
        (psycopg.OperationalError("cannot exit pipeline mode while busy"), True),
        (psycopg.OperationalError("consuming input failed: server closed the connection"), True),
        (errors.AdminShutdown("terminating connection due to administrator command"), True),
        (errors.ConnectionFailure("connection failure"), True),
        (errors.QueryCanceled("canceling statement due to statement timeout"), False),
        (errors.DeadlockDetected("deadlock detected"), False),
        (errors.UniqueViolation("duplicate key"), False),
        (errors.DivisionByZero("division by zero"), False),
    ],
)
def test_which_driver_errors_mean_the_connection_is_gone(error: Exception, lost: bool) -> None:
    assert connection_lost(error, psycopg.OperationalError) is lost


ADMIN_SHUTDOWN = "DO $$ BEGIN RAISE EXCEPTION 'bye' USING ERRCODE = '57P01'; END $$"


@pytest.fixture
def engine(postgres_cluster: PostgresCluster) -> Iterator[Engine]:
    engine = make_engine(Settings(database_url=postgres_cluster.database()))
    yield engine
    engine.dispose()


def _invalidations(engine: Engine) -> list[object]:
    seen: list[object] = []
    event.listen(engine.pool, "invalidate", lambda *args: seen.append(args[2]))
    return seen


def test_a_shutdown_error_on_a_live_connection_discards_it(engine: Engine) -> None:
    """The server's admin-shutdown error (57P01), raised here by a statement on a connection
    that stays up: exactly what psycopg sees before it notices the socket close."""
    invalidated = _invalidations(engine)
    with engine.connect() as connection:
        pid = connection.execute(text("SELECT pg_backend_pid()")).scalar()
        with pytest.raises(OperationalError) as raised:
            connection.execute(text(ADMIN_SHUTDOWN))
        assert raised.value.connection_invalidated
    assert len(invalidated) == 1
    with engine.connect() as connection:  # the pool hands out a new connection
        assert connection.execute(text("SELECT pg_backend_pid()")).scalar() != pid


def test_a_failed_statement_keeps_its_connection(engine: Engine) -> None:
    invalidated = _invalidations(engine)
    with engine.connect() as connection:
        with pytest.raises(Exception, match="division by zero"):
            connection.execute(text("SELECT 1 / 0"))
        assert not connection.invalidated
    assert invalidated == []

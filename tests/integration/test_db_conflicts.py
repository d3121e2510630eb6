"""A transaction PostgreSQL rolls back as a conflict (a real deadlock between two
connections) is transient but not an outage: `ride_out` runs it again at once and logs a
conflict, not "metadata database unreachable"; a worker does not spend a file's attempt on
it; `serve` answers 503 saying it collided, not that the database is unreachable."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from casescope.config import Settings
from casescope.model.outage import is_conflict, is_outage, is_transient, ride_out
from tests.postgres import PostgresCluster


@pytest.fixture
def engine(postgres_cluster: PostgresCluster) -> Iterator[Engine]:
    engine = create_engine(postgres_cluster.database(), isolation_level="READ COMMITTED")
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS conflict_rows"))
        connection.execute(text("CREATE TABLE conflict_rows (id int PRIMARY KEY, n int)"))
        connection.execute(text("INSERT INTO conflict_rows VALUES (1, 0), (2, 0)"))
    yield engine
    engine.dispose()


def _deadlock(engine: Engine) -> OperationalError:
    """Two transactions that lock rows 1 and 2 in opposite orders; PostgreSQL ends one with
    'deadlock detected' (SQLSTATE 40P01): that one's error."""
    errors: list[BaseException] = []
    both_hold_one = threading.Barrier(2)

    def lock(first: int, second: int) -> None:
        try:
            with engine.begin() as connection:
                connection.execute(text("SET LOCAL deadlock_timeout = '100ms'"))
                connection.execute(text(f"UPDATE conflict_rows SET n = n + 1 WHERE id = {first}"))
                both_hold_one.wait(timeout=10)
                connection.execute(text(f"UPDATE conflict_rows SET n = n + 1 WHERE id = {second}"))
        except OperationalError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=lock, args=order) for order in ((1, 2), (2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(errors) == 1, errors
    return errors[0]


def test_a_deadlock_is_a_conflict_not_an_outage(engine: Engine) -> None:
    error = _deadlock(engine)
    assert "deadlock detected" in str(error)
    assert is_conflict(error) and is_transient(error)
    assert not is_outage(error)
    try:  # as a failure path re-raises it: still a conflict
        raise RuntimeError("completing the file failed") from error
    except RuntimeError as wrapped:
        assert is_conflict(wrapped) and not is_outage(wrapped)


def test_ride_out_runs_a_deadlocked_transaction_again_and_logs_a_conflict(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(home=tmp_path / "home", db_outage_seconds=30)
    error = _deadlock(engine)
    runs: list[int] = []

    def operation() -> str:
        runs.append(1)
        if len(runs) == 1:
            raise error
        return "done"

    with caplog.at_level(logging.INFO, logger="casescope.model.outage"):
        assert ride_out(settings, "test step", operation) == "done"
    assert len(runs) == 2
    messages = [r.getMessage() for r in caplog.records]
    assert any("transaction conflict (test step: deadlock detected" in m for m in messages)
    assert not any("unreachable" in m or "reachable again" in m for m in messages), messages

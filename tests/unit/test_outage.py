"""`ride_out`: what counts as a metadata DB outage, and the limit of the wait; `Backoff`,
the pace of `serve`'s loops during one."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from casescope.config import Settings
from casescope.errors import DatabaseUnavailableError
from casescope.model.outage import MAX_DELAY_SECONDS, Backoff, is_outage, ride_out


def test_an_unreachable_server_is_waited_for_then_a_clear_error(tmp_path: Path) -> None:
    # a socket folder with no server in it: every connection attempt is refused
    url = f"postgresql+psycopg://postgres@/nothing?host={tmp_path}&port=5432"
    settings = Settings(home=tmp_path / "home", database_url=url, db_outage_seconds=1.2)
    engine = create_engine(url)
    attempts: list[int] = []

    def connect() -> None:
        attempts.append(1)
        with engine.connect():
            pass

    with pytest.raises(DatabaseUnavailableError, match="CASESCOPE_DB_OUTAGE_SECONDS") as caught:
        ride_out(settings, "test", connect)
    assert is_outage(caught.value.__cause__)
    assert len(attempts) >= 2  # retried after the first refusal
    engine.dispose()


def test_sqlite_errors_are_never_an_outage(tmp_path: Path) -> None:
    """On SQLite an OperationalError is a locked, full or broken file: raised at once."""
    settings = Settings(home=tmp_path / "home", db_outage_seconds=60)
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    attempts: list[int] = []

    def query() -> None:
        attempts.append(1)
        with engine.connect() as connection:
            connection.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(OperationalError) as caught:
        ride_out(settings, "test", query)
    assert not is_outage(caught.value)
    assert attempts == [1]
    engine.dispose()


def test_a_loop_backs_off_while_unreachable_and_keeps_its_pace_after(tmp_path: Path) -> None:
    """`serve`'s loops: never a limit, waits doubling to the cap, the interval once back;
    an error that is not an outage is the loop's to report."""
    url = f"postgresql+psycopg://postgres@/nothing?host={tmp_path}&port=5432"
    settings = Settings(home=tmp_path / "home", database_url=url, db_outage_seconds=0.1)
    engine = create_engine(url)

    def connect() -> None:
        with engine.connect():
            pass

    pace = Backoff(settings, "test loop", interval=1.0)
    waits = []
    for _ in range(6):  # far past db_outage_seconds: serve does not give up
        assert pace.run(connect) is False
        waits.append(pace.wait)
    assert waits == [2.0, 4.0, 8.0, MAX_DELAY_SECONDS, MAX_DELAY_SECONDS, MAX_DELAY_SECONDS]
    assert pace.run(lambda: None) is True
    assert pace.wait == 1.0
    with pytest.raises(ZeroDivisionError):
        pace.run(lambda: 1 / 0)
    engine.dispose()

"""clickhouse-connect's errors as casescope's: a lost server is no file's fault (the loader
leaves files pending), a refused statement is a RuntimeError as chDB's own errors are."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from casescope.errors import IndexUnavailableError, QueryTimeoutError
from casescope.store.index_url import parse_index_url
from casescope.store.load_failures import LOAD_ERRORS
from casescope.store.query_bounds import query_errors
from casescope.store.server_index import ServerIndexError, server_errors

TARGET = parse_index_url("clickhouse://analyst:hunter2@ch.example:8123/casescope")


def test_a_lost_connection_names_the_setting_and_the_server_not_the_password() -> None:
    with pytest.raises(IndexUnavailableError) as caught, server_errors(TARGET):
        raise OperationalError("Error HTTPConnectionPool(host='ch.example'): Connection reset")
    message = str(caught.value)
    assert message.startswith("CASESCOPE_INDEX_URL: the event index at http://analyst@ch.example")
    assert "hunter2" not in message


def test_a_refused_statement_is_a_load_error_and_keeps_its_code() -> None:
    with pytest.raises(ServerIndexError) as caught, server_errors(TARGET):
        raise DatabaseError("Code: 60. DB::Exception: Unknown table (UNKNOWN_TABLE)")
    assert isinstance(caught.value, LOAD_ERRORS) and "UNKNOWN_TABLE" in str(caught.value)


def test_a_server_timeout_is_the_query_timeout_error() -> None:
    with pytest.raises(QueryTimeoutError), query_errors(30.0), server_errors(TARGET):
        raise DatabaseError("Code: 159. DB::Exception: Timeout exceeded (TIMEOUT_EXCEEDED)")

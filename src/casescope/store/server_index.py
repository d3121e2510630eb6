"""The event index on a ClickHouse server, through clickhouse-connect (team mode).

The same `EventIndex` as `ChdbIndex`, running the same DDL and SQL (store/events_sql.py,
store/events_table.py and every query builder of the store): only the transport differs.
A server cannot read a worker's files, so a load reads the segment's Parquet here and sends
its rows as Arrow (`insert_arrow`), one INSERT per load as the loader cut it
(store/arrow_load.py). Several processes, on several hosts, may load and search at once: no
owner lock; a loader claims the files it loads instead (store/load_claims.py), and its
delete-then-insert keeps each file's events in the index exactly once (docs/decisions.md,
"Team mode: exactly once under per-file load claims").

`CASESCOPE_INDEX_URL=chdb:///path` runs this same code on clickhouse-connect's in-process
chDB interface, which is how the test suite exercises it (no server can be installed there).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from casescope.errors import IndexConfigError, IndexUnavailableError
from casescope.store import events_sql as q
from casescope.store.arrow_load import bundles_table, items_table
from casescope.store.chdb_memory import STREAM_SETTINGS
from casescope.store.events_sql import LoadItem, ensure_schema
from casescope.store.events_table import DATABASE, EVENT_COLUMNS
from casescope.store.index import IN_ORDER_MAX_PARTS
from casescope.store.index_url import SETTING, IndexTarget, IndexTransport
from casescope.store.load_claims import ROUND_PREFIX, load_query_id
from casescope.store.query_bounds import (
    QueryKind,
    QueryTimeouts,
    query_errors,
    time_setting,
    with_settings,
)
from casescope.store.segments import segment_files

logger = logging.getLogger(__name__)

#: Seconds to wait for a server's TCP connection; a query's own bound is max_execution_time.
CONNECT_TIMEOUT_S = 10
#: Seconds an HTTP request may wait beyond the longest query bound before it is given up.
RECEIVE_MARGIN_S = 60
#: Per-INSERT settings: as the chDB loads, one insert thread; the server forms parts.
INSERT_SETTINGS = {"max_insert_threads": 1}


class ServerIndexError(RuntimeError):
    """The server refused a statement (as chDB's own errors, a RuntimeError: the loader and
    `query_bounds.query_errors` treat both alike)."""


def _client_errors() -> tuple[type[Exception], type[Exception]]:
    """(errors of the connection, every error of clickhouse-connect)."""
    from clickhouse_connect.driver.exceptions import ClickHouseError, OperationalError

    return OperationalError, ClickHouseError


@contextmanager
def server_errors(target: IndexTarget) -> Iterator[None]:
    """clickhouse-connect's errors as ours: a lost connection as IndexUnavailableError
    (no file's fault: the loader does not fail files for it), a refused statement as
    ServerIndexError."""
    unreachable, any_error = _client_errors()
    try:
        yield
    except unreachable as error:
        raise IndexUnavailableError(
            f"{SETTING}: the event index at {target.where} did not answer ({_first_line(error)})"
        ) from error
    except any_error as error:
        raise ServerIndexError(str(error)) from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def connect(target: IndexTarget, timeouts: QueryTimeouts) -> Any:
    """A clickhouse-connect client for `target`; IndexConfigError naming the setting when the
    server cannot be reached or refuses the login."""
    try:
        import clickhouse_connect
    except ImportError as error:
        raise IndexConfigError(
            f"{SETTING} names a ClickHouse server, but clickhouse-connect is not installed: "
            "pip install -e '.[team]'"
        ) from error
    _, any_error = _client_errors()
    try:
        if target.transport is IndexTransport.CHDB:
            return clickhouse_connect.get_client(interface="chdb", path=target.path)
        return clickhouse_connect.get_client(
            host=target.host,
            port=target.port,
            username=target.username,
            password=target.password,
            secure=target.transport is IndexTransport.HTTPS,
            verify=target.verify,
            ca_cert=target.ca_cert,
            connect_timeout=CONNECT_TIMEOUT_S,
            send_receive_timeout=int(timeouts.long) + RECEIVE_MARGIN_S,
            autogenerate_session_id=False,  # no server session: one client, many threads
            form_encode_query_params=True,  # long id lists travel in the body, not the URL
        )
    except any_error as error:
        raise IndexConfigError(
            f"{SETTING}: cannot open the event index at {target.where}: {_first_line(error)}"
        ) from error


class ClickHouseServerIndex(q.Bookkeeping):
    """The event index on a ClickHouse server (or clickhouse-connect's chDB interface)."""

    shared_by_processes = True

    def __init__(
        self, target: IndexTarget, timeouts: QueryTimeouts | None = None, *, create: bool = True
    ) -> None:
        """Connect, create the events table if missing and check its DDL version."""
        self.target = target
        self.timeouts = timeouts or QueryTimeouts()
        self._client = connect(target, self.timeouts)
        if create:
            try:
                ensure_schema(self)
            except (ServerIndexError, IndexUnavailableError) as error:
                self._client.close()
                raise IndexConfigError(
                    f"{SETTING}: the event index at {target.where} cannot be prepared "
                    f"(missing grants? docs/deploy.md): {_first_line(error)}"
                ) from error
            except IndexConfigError:
                self._client.close()
                raise

    def reader(self) -> ClickHouseServerIndex:
        """Another client for queries beside this one's (the table exists already)."""
        return ClickHouseServerIndex(self.target, self.timeouts, create=False)

    def close(self) -> None:
        self._client.close()

    def trim_memory(self) -> None:
        """Nothing to trim: the engine's memory is the server's."""

    def execute(self, sql: str, params: Mapping[str, object] | None = None) -> None:
        with server_errors(self.target):
            self._client.command(sql, parameters=dict(params or {}))

    def _rows(
        self, sql: str, params: Mapping[str, object] | None, seconds: float | None = None
    ) -> list[dict]:
        """The rows of a query as JSON objects, as `ChdbIndex` returns them."""
        with query_errors(seconds), server_errors(self.target):
            data = self._client.raw_query(sql, parameters=dict(params or {}), fmt="JSONEachRow")
        return [orjson.loads(line) for line in data.splitlines() if line]

    def scalar(self, sql: str, params: Mapping[str, object] | None = None) -> Any:
        rows = self._rows(sql, params)
        return next(iter(rows[0].values())) if rows else None

    def query_rows(
        self,
        sql: str,
        params: Mapping[str, object] | None = None,
        *,
        settings: str = "",
        kind: QueryKind = QueryKind.INTERACTIVE,
    ) -> list[dict]:
        seconds = self.timeouts.seconds(kind)
        return self._rows(with_settings(sql, time_setting(seconds), settings), params, seconds)

    def stream_batches(
        self,
        sql: str,
        params: Mapping[str, object] | None = None,
        rows_per_batch: int = 50_000,
        settings: str = "",
        kind: QueryKind = QueryKind.LONG,
    ) -> Iterator[pa.RecordBatch]:
        """A query's result as Arrow batches (the server's blocks, at most `rows_per_batch`
        rows each), under the same time bound and stream settings as chDB's."""
        seconds = self.timeouts.seconds(kind)
        sql = with_settings(sql, time_setting(seconds), STREAM_SETTINGS, settings)
        with query_errors(seconds), server_errors(self.target):
            stream = self._client.query_arrow_stream(sql, parameters=dict(params or {}))
            with stream as batches:
                for batch in batches:
                    for start in range(0, batch.num_rows, rows_per_batch):
                        yield batch.slice(start, rows_per_batch)

    def ddl_version(self) -> int | None:
        return q.ddl_version_of(self.scalar(q.TABLE_COMMENT))

    def load(self, items: Sequence[LoadItem]) -> None:
        """Insert the rows of `items` with one INSERT (a slice is loaded alone)."""
        if not items:
            return
        paths = [path.name for item in items for path in segment_files(item.segment_path)]
        if len(set(paths)) != len(paths):
            raise ValueError("a load batch must not contain the same segment twice")
        if len(items) > 1 and any(item.is_slice for item in items):
            raise ValueError("a slice of a segment must be loaded alone")
        self._insert(items_table(items))

    def load_bundles(self, bundles: Mapping[Path, Sequence[LoadItem]]) -> None:
        if any(bundles.values()):
            self._insert(bundles_table(bundles))

    def _insert(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        settings = INSERT_SETTINGS | {"query_id": load_query_id()}
        with server_errors(self.target):
            self._client.insert_arrow(
                f"{DATABASE}.events", table.select(list(EVENT_COLUMNS)), settings=settings
            )

    def fence_loads(self, prefixes: Sequence[str]) -> None:
        """Stop, and wait out, the loading INSERTs still at the server whose query ids start
        with one of `prefixes`: the claim rounds that last held the files a new claimant
        takes, ended or dead, so none is a live loader's. A dead loader's claims ended with
        its process, but an INSERT the server had received in full would still run, and land
        after the new claimant deleted the file's rows (docs/decisions.md, record 24).
        In-process chDB needs none: the loader's INSERTs end with its process."""
        if self.target.transport is IndexTransport.CHDB:
            return
        for prefix in prefixes:
            if not ROUND_PREFIX.match(prefix):
                raise ValueError(f"not a claim round's query-id prefix: {prefix!r}")
            self.execute(f"KILL QUERY WHERE query_id LIKE '{prefix}%' SYNC")

    def compact(self, on_step: Callable[[int], None] | None = None) -> int:
        """The parts there are: a server merges in its own time, for every client at once,
        and an OPTIMIZE of a shared table from one loader would hold the others up."""
        return self.active_parts()

    def reads_in_order(self) -> bool:
        return self.active_parts() <= IN_ORDER_MAX_PARTS

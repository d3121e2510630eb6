"""The event index: ClickHouse tables holding every indexed event.

`EventIndex` is the interface the rest of casescope uses; `ChdbIndex` implements it on chDB
(in-process ClickHouse), the embedded default, and `store.server_index.ClickHouseServerIndex`
on a ClickHouse server through clickhouse-connect (team mode); both run the statements of
`store.events_sql`. Only the process holding the owner lock (`store.owner`) may construct a
`ChdbIndex`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import orjson
import psutil
import pyarrow as pa

from casescope.allocators import return_large_blocks, use_system_arrow_pool
from casescope.errors import CasescopeError
from casescope.store import events_sql as q
from casescope.store.chdb_memory import LOAD_SETTINGS, STREAM_SETTINGS, connection_string
from casescope.store.events_sql import (
    LoadItem,
    SearchPage,
    ensure_schema,
    literal,
    slice_conditions,
    where,
)
from casescope.store.events_table import DATABASE, EVENT_COLUMNS
from casescope.store.pages import page_out_library
from casescope.store.query_bounds import (
    QueryKind,
    QueryTimeouts,
    is_memory_error,
    query_errors,
    time_setting,
    with_settings,
)
from casescope.store.segments import segment_files

logger = logging.getLogger(__name__)

__all__ = ["ChdbIndex", "EventIndex", "LoadItem", "SearchPage"]

#: chDB's native library, as named in /proc/self/maps.
CHDB_LIBRARY = "_chdb.abi3.so"
#: `ChdbIndex.trim_memory` runs at most this often, and only above this much file-backed RSS.
TRIM_INTERVAL_S = 5.0
TRIM_FILE_MB = 160


def _connect(connection: str) -> Any:
    """A chDB session on the index. chDB maps a ~300 MB native library: imported here so
    that only the index owner pays for it, never workers or the pool supervisor."""
    from chdb import session as chdb_session

    return chdb_session.Session(connection)


def _file_backed_mb() -> float:
    """Resident pages of mapped files (and shared memory), MB: psutil's `shared`."""
    return psutil.Process().memory_info().shared / 2**20


#: An INSERT that fails for memory (a merge running beside it) is retried this many times,
#: after its partial rows are removed and the running merges have finished.
LOAD_ATTEMPTS = 4
MERGE_WAIT_SECONDS = 300.0
MERGE_POLL_SECONDS = 0.1
#: `compact` leaves an index of COMPACT_ABOVE_PARTS parts or fewer to the background merges,
#: and takes them to be done once none has run for MERGES_QUIET_SECONDS (the next merge of a
#: backlog starts within a second of the last; stopping early only leaves merges to the next
#: owner).
COMPACT_ABOVE_PARTS = 10
MERGES_QUIET_SECONDS = 2.0
#: A query in time order (ORDER BY ts … LIMIT) reads the parts in order, one stream per
#: part, each holding blocks of its columns: on 254 parts of a 5M-event load the first page
#: of a common term needed >1.6 GB (111 parts: 800 MB; 95: 100 MB; 36: 50 MB), and failed at
#: the budget. Over IN_ORDER_MAX_PARTS parts it sorts the matches instead (SORTED_READ): with
#: lazy materialisation ClickHouse reads only the sort and filter columns of every match,
#: then the page's rows (50 MB enough on 254 parts, and faster there; on 12 parts in-order is
#: 22-62 ms against 70-146 for a common term).
IN_ORDER_MAX_PARTS = 32
SORTED_READ = "optimize_read_in_order = 0"

_SEGMENT_COLUMNS = ", ".join(
    "ifNull(ts, toDateTime64(0, 6, 'UTC'))" if c == "ts" else c for c in EVENT_COLUMNS[2:]
)


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _bind(params: Mapping[str, object] | None) -> dict[str, object]:
    """chDB passes parameters as text: render lists/tuples as ClickHouse array literals."""
    bound: dict[str, object] = {}
    for name, value in (params or {}).items():
        if isinstance(value, list | tuple):
            bound[name] = "[" + ",".join(literal(v) for v in value) + "]"
        elif isinstance(value, str):  # parameters are parsed as escaped text: \t is a tab
            bound[name] = value.translate(_ESCAPES)
        else:
            bound[name] = value
    return bound


def _glob_of(paths: Sequence[Path]) -> str:
    """One ClickHouse glob naming exactly these Parquet files: `base/{a/x,b/y}.parquet`."""
    if len(paths) == 1:
        return str(paths[0])
    base = Path(os.path.commonpath(paths))
    stems = [str(p.relative_to(base).with_suffix("")) for p in paths]
    if any(ch in stem for stem in stems for ch in "{},*?"):
        raise ValueError("segment names must not contain glob characters")
    return f"{base}/{{{','.join(stems)}}}.parquet"


class EventIndex(Protocol):
    #: Whether other processes load into this index too (a ClickHouse server): loaders then
    #: claim the files they load (store/load_claims.py) instead of relying on the owner lock.
    shared_by_processes: bool

    def reader(self) -> EventIndex: ...
    def close(self) -> None: ...
    def ddl_version(self) -> int | None: ...
    def trim_memory(self) -> None: ...
    def fence_loads(self, prefixes: Sequence[str]) -> None: ...
    def load(self, items: Sequence[LoadItem]) -> None: ...
    def load_bundles(self, bundles: Mapping[Path, Sequence[LoadItem]]) -> None: ...
    def remove_partial(self, items: Sequence[LoadItem]) -> None: ...
    def delete_files(self, file_ids: Sequence[int]) -> None: ...
    def delete_case(self, case_id: int) -> None: ...
    def active_parts(self) -> int: ...
    def compact(self, on_step: Callable[[int], None] | None = None) -> int: ...
    def reads_in_order(self) -> bool: ...
    def files_present(self, file_ids: Sequence[int]) -> set[int]: ...
    def rows_present(self, item: LoadItem) -> bool: ...
    def count(self, case_id: int | None = None) -> int: ...
    def counts_by_file(self, case_id: int) -> dict[int, int]: ...
    def query_rows(
        self,
        sql: str,
        params: Mapping[str, object],
        *,
        settings: str = "",
        kind: QueryKind = QueryKind.INTERACTIVE,
    ) -> list[dict[str, Any]]: ...
    def stream_batches(
        self,
        sql: str,
        params: Mapping[str, object],
        rows_per_batch: int = 50_000,
        settings: str = "",
        kind: QueryKind = QueryKind.LONG,
    ) -> Iterator[pa.RecordBatch]: ...


class ChdbIndex(q.Bookkeeping):
    """The embedded event index (chDB). One instance per process, held by the lock owner;
    its `reader`s are further connections of that process to the same index."""

    shared_by_processes = False

    def __init__(
        self,
        path: Path,
        memory_mb: int | None = None,
        timeouts: QueryTimeouts | None = None,
        page_out: bool = True,
    ) -> None:
        """Open (create) the index at `path`; `memory_mb` bounds chDB's memory
        (`server_settings`; None: ClickHouse's defaults, sized by the host's RAM), `timeouts`
        the time of its queries (store/query_bounds.py). `page_out`: give back the library's
        pages the session touched now (`trim_memory`); a process that exits within seconds
        passes False (they are freed at its exit; the advice and the faults it causes cost
        a one-word `casescope search` a quarter of its time, bench/cli.py)."""
        use_system_arrow_pool()  # streamed results are built and dropped: give memory back
        return_large_blocks()
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.timeouts = timeouts or QueryTimeouts()
        self._connection = connection_string(path, memory_mb)
        self._session = _connect(self._connection)
        self._trimmed_at: float | None = None
        ensure_schema(self)
        if page_out:
            self.trim_memory()

    def reader(self) -> ChdbIndex:
        """Another connection to this index, for queries run beside this one's. chDB runs the
        queries of different connections in parallel, but one connection runs one query at
        a time, and a query on a connection ends the stream open on it
        (bench/index_concurrency.py): each thread that queries needs a connection of its own.
        A reader only reads: loads, deletes and DDL stay with the owner's connection."""
        twin = object.__new__(ChdbIndex)
        twin.path, twin.timeouts, twin._connection = self.path, self.timeouts, self._connection
        twin._session = _connect(self._connection)
        twin._trimmed_at = None
        return twin

    def close(self) -> None:
        self._session.close()

    def fence_loads(self, prefixes: Sequence[str]) -> None:
        """Nothing to fence: the owner is the only loader, and its INSERTs end with it."""

    def trim_memory(self) -> None:
        """Give back the pages of chDB's library that this process mapped but does not use
        (store/pages.py): ~200 MB after opening a session, less later. At most once per
        TRIM_INTERVAL_S, and only while more than TRIM_FILE_MB of mapped files are resident:
        the pages it drops that are still used are read again (a 5M-event load that trimmed
        before every INSERT spent most of its system time faulting them back)."""
        now = time.monotonic()
        if self._trimmed_at is not None and now - self._trimmed_at < TRIM_INTERVAL_S:
            return
        if self._trimmed_at is not None and _file_backed_mb() < TRIM_FILE_MB:
            return
        self._trimmed_at = now
        page_out_library(CHDB_LIBRARY)

    def execute(self, sql: str, params: Mapping[str, object] | None = None) -> None:
        self._session.query(sql, "CSV", params=_bind(params))

    def ddl_version(self) -> int | None:
        """The version of the events table's DDL (store/events_table.py, DDL_VERSION)."""
        return q.ddl_version_of(self.scalar(q.TABLE_COMMENT))

    def query_rows(
        self,
        sql: str,
        params: Mapping[str, object] | None = None,
        *,
        settings: str = "",
        kind: QueryKind = QueryKind.INTERACTIVE,
    ) -> list[dict]:
        """The rows of a query (`sql` without a SETTINGS clause: `settings` are added after
        its time bound for `kind`); past the bound it ends as QueryTimeoutError."""
        seconds = self.timeouts.seconds(kind)
        return self._rows(with_settings(sql, time_setting(seconds), settings), params, seconds)

    def _rows(
        self, sql: str, params: Mapping[str, object] | None, seconds: float | None = None
    ) -> list[dict]:
        """The rows of a query as it is: the owner's bookkeeping, not bounded in time."""
        with query_errors(seconds):
            result = self._session.query(sql, "JSONEachRow", params=_bind(params))
        data = result.bytes()
        return [orjson.loads(line) for line in data.splitlines() if line]

    def scalar(self, sql: str, params: Mapping[str, object] | None = None) -> Any:
        """The first value of a bookkeeping query's first row (not bounded in time)."""
        rows = self._rows(sql, params)
        return next(iter(rows[0].values())) if rows else None

    def stream_batches(
        self,
        sql: str,
        params: Mapping[str, object] | None = None,
        rows_per_batch: int = 50_000,
        settings: str = "",
        kind: QueryKind = QueryKind.LONG,
    ) -> Iterator[pa.RecordBatch]:
        """Stream a query's result as Arrow batches (bounded memory, no row cap). `sql` has no
        SETTINGS clause of its own: the time bound of `kind` and STREAM_SETTINGS are added,
        then `settings` (a setting named twice keeps its first value, so these cannot change
        the others)."""
        seconds = self.timeouts.seconds(kind)
        sql = with_settings(sql, time_setting(seconds), STREAM_SETTINGS, settings)
        with query_errors(seconds):
            result = self._session.send_query(sql, "Arrow", params=_bind(params))
        failed = False
        try:
            with query_errors(seconds):
                yield from result.record_batch(rows_per_batch=rows_per_batch)
        except (CasescopeError, RuntimeError):
            failed = True
            raise
        finally:
            result.close()
            if failed:  # chDB answers the next query with what was left of a failed stream
                self._session.query("SELECT 1", "CSV")

    def load(self, items: Sequence[LoadItem]) -> None:
        """Insert many segments with one INSERT (few, large parts: DESIGN decision 4).

        Segment file names are unique per content and a batch never holds one segment twice,
        so each row's case and file are found from its segment's name (`_file`); a segment
        written in pieces (a directory) is read from every piece. A slice of a
        segment (`LoadItem.seq_from/seq_to`) is loaded alone; the Parquet reader skips the
        row groups outside it by their `seq` statistics.
        """
        files = [(item, path) for item in items for path in segment_files(item.segment_path)]
        if not files:
            return
        names = [path.name for _, path in files]
        if len(set(names)) != len(names):
            raise ValueError("a load batch must not contain the same segment twice")
        if len(items) > 1 and any(item.is_slice for item in items):
            raise ValueError("a slice of a segment must be loaded alone")
        paths = [path for _, path in files]
        params: dict[str, object] = {
            "names": names,
            "file_ids": [item.file_id for item, _ in files],
            "case_ids": [item.case_id for item, _ in files],
        }
        sql = (
            f"INSERT INTO {DATABASE}.events ({', '.join(EVENT_COLUMNS)}) "
            "SELECT transform(_file, {names:Array(String)}, {case_ids:Array(UInt32)}, 0), "
            "transform(_file, {names:Array(String)}, {file_ids:Array(UInt64)}, 0), "
            f"{_SEGMENT_COLUMNS} FROM file({literal(_glob_of(paths))}, Parquet) "
            f"{where(slice_conditions(items[0], params))}SETTINGS {LOAD_SETTINGS}"
        )
        self._insert(sql, params, items)

    def load_bundles(self, bundles: Mapping[Path, Sequence[LoadItem]]) -> None:
        """Insert files from group load bundles (jobs/group.py) with one INSERT: each file's
        rows from the bundle it is listed under, and no other rows of that bundle (a bundle
        may hold older events of a file since re-indexed, or a file another worker owns)."""
        items = [item for group in bundles.values() for item in group]
        if not items:
            return
        keys = [f"{path.name}/{item.file_id}" for path, group in bundles.items() for item in group]
        sql = (
            f"INSERT INTO {DATABASE}.events ({', '.join(EVENT_COLUMNS)}) "
            f"SELECT case_id, file_id, {_SEGMENT_COLUMNS} "
            f"FROM file({literal(_glob_of(list(bundles)))}, Parquet) "
            "WHERE has({keys:Array(String)}, concat(_file, '/', toString(file_id))) "
            f"SETTINGS {LOAD_SETTINGS}"
        )
        self._insert(sql, {"keys": keys}, items)

    def _insert(self, sql: str, params: dict[str, object], items: Sequence[LoadItem]) -> None:
        """Run a loading INSERT; after a memory error its partial rows are removed and it is
        retried once the running merges are done."""
        for attempt in range(1, LOAD_ATTEMPTS + 1):
            try:
                self.execute(sql, params)
                return
            except RuntimeError as error:  # chdb.ChdbError (imported only by the owner)
                if not is_memory_error(error) or attempt == LOAD_ATTEMPTS:
                    raise
                logger.warning("load hit the memory limit (attempt %d); retrying", attempt)
                self.remove_partial(items)
                self.wait_for_merges(MERGE_WAIT_SECONDS)

    def wait_for_merges(
        self,
        timeout: float,
        quiet: float = 0.0,
        on_step: Callable[[int], None] | None = None,
    ) -> None:
        """Return once no merge has run on the events table for `quiet` seconds (0: once
        none runs), or after `timeout` seconds; `on_step` gets the parts left while merges
        run."""
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while (now := time.monotonic()) < deadline:
            if self._merges_running():
                quiet_since = None
                if on_step is not None:
                    on_step(self.active_parts())
            else:
                quiet_since = now if quiet_since is None else quiet_since
                if now - quiet_since >= quiet:
                    return
            time.sleep(MERGE_POLL_SECONDS)

    def compact(self, on_step: Callable[[int], None] | None = None) -> int:
        """Wait while the background merges work through the parts a large load left
        (merges run niced and fall behind it); the parts left once none has run for
        MERGES_QUIET_SECONDS (nothing to wait for at COMPACT_ABOVE_PARTS or fewer). No
        OPTIMIZE of our own: below 1 GiB of budget one merge runs at a time, and two at once
        passed the 500 MB goal (docs/decisions.md). `on_step` gets the parts left while
        merges run."""
        parts = self.active_parts()
        if parts > COMPACT_ABOVE_PARTS:
            self.wait_for_merges(MERGE_WAIT_SECONDS, MERGES_QUIET_SECONDS, on_step)
            parts = self.active_parts()
        return parts

    def reads_in_order(self) -> bool:
        """Whether a query in time order may read the parts in order (IN_ORDER_MAX_PARTS)."""
        return self.active_parts() <= IN_ORDER_MAX_PARTS

    def _merges_running(self) -> int:
        return int(self.scalar(q.MERGES_RUNNING) or 0)

"""The SQL both index transports run: loading bounds, bookkeeping queries and the DDL check.

`ChdbIndex` (embedded chDB) and `ClickHouseServerIndex` (a ClickHouse server through
clickhouse-connect) differ only in how they send a statement and how a segment's rows reach
the engine (chDB reads the Parquet file itself; a server is sent Arrow batches). Every
statement text lives here, once, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from casescope.errors import IndexConfigError
from casescope.store.events_table import DATABASE, DDL_VERSION, EVENTS_DDL, MERGE_SETTINGS
from casescope.store.load_item import LoadItem


@dataclass(frozen=True)
class SearchPage:
    rows: list[dict[str, Any]]
    total: int | None


def literal(value: object) -> str:
    """A value as ClickHouse's text form of a query parameter inside an array."""
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    raise TypeError(f"unsupported array parameter element: {type(value).__name__}")


def slice_conditions(item: LoadItem, params: dict[str, object]) -> list[str]:
    """The conditions of a slice's rows (adding its bounds to `params`); none for a file."""
    if not item.is_slice:
        return []
    params["seq_from"] = item.seq_from
    if item.seq_to is None:
        return ["seq >= {seq_from:UInt64}"]
    params["seq_to"] = item.seq_to
    return ["seq >= {seq_from:UInt64}", "seq < {seq_to:UInt64}"]


def where(conditions: Sequence[str]) -> str:
    """A WHERE clause of the AND of `conditions` (none: no clause)."""
    return f"WHERE {' AND '.join(conditions)} " if conditions else ""


EVENTS = f"{DATABASE}.events"

#: The statements that create (or keep) the events table, in order.
SCHEMA_STATEMENTS = (
    f"CREATE DATABASE IF NOT EXISTS {DATABASE}",
    EVENTS_DDL,
    f"ALTER TABLE {EVENTS} MODIFY SETTING {MERGE_SETTINGS}",
)
#: The events table's comment records the version of its DDL (`DDL_VERSION`).
DDL_COMMENT = f"casescope events DDL {DDL_VERSION}"
TABLE_COMMENT = (
    f"SELECT comment FROM system.tables WHERE database = '{DATABASE}' AND name = 'events'"
)
SET_COMMENT = f"ALTER TABLE {EVENTS} MODIFY COMMENT '{DDL_COMMENT}'"


def ddl_version_of(comment: str | None) -> int | None:
    """The DDL version a table comment records (None: not one of ours, or none yet)."""
    prefix = "casescope events DDL "
    if comment and comment.startswith(prefix) and comment[len(prefix) :].isdigit():
        return int(comment[len(prefix) :])
    return None


def ddl_status(version: int | None) -> tuple[bool, str]:
    """Whether an index of DDL `version` fits this casescope, and that said in words (for
    `doctor` and `/health`, which know no DDL of their own)."""
    if version == DDL_VERSION:
        return True, f"DDL version {version}"
    return False, f"DDL version {version}, needs {DDL_VERSION}"


class Statements(Protocol):
    """What `ensure_schema` needs of a transport: run a statement, read one value."""

    def execute(self, sql: str, params: Mapping[str, object] | None = None) -> None: ...
    def scalar(self, sql: str, params: Mapping[str, object] | None = None) -> Any: ...


def ensure_schema(index: Statements) -> int:
    """Create the events table if missing and check its DDL version (a table made before
    versions were recorded is of version 1, and gets the comment); returns the version.
    An index of another version is refused: its SQL would not fit this casescope."""
    for statement in SCHEMA_STATEMENTS:
        index.execute(statement)
    comment = index.scalar(TABLE_COMMENT)
    version = ddl_version_of(comment)
    if version is None and not comment:
        index.execute(SET_COMMENT)
        version = DDL_VERSION
    if version != DDL_VERSION:
        raise IndexConfigError(
            f"the event index's table {EVENTS} is of DDL version {version or comment!r}, "
            f"this casescope needs version {DDL_VERSION} (CASESCOPE_INDEX_URL names another "
            "casescope's index, or it must be rebuilt: docs/deploy.md)"
        )
    return version


def remove_rows(items: Sequence[LoadItem]) -> tuple[str, dict[str, object]]:
    """DELETE of what a failed INSERT of `items` may have written: their files' rows, or only
    the slice's rows for a slice."""
    params: dict[str, object] = {"ids": [item.file_id for item in items]}
    rows = ["file_id IN {ids:Array(UInt64)}", *slice_conditions(items[0], params)]
    return f"DELETE FROM {EVENTS} {where(rows)}", params


def rows_present(item: LoadItem) -> tuple[str, dict[str, object]]:
    """A count of the rows of `item` (its file, or its slice) in the index."""
    params: dict[str, object] = {"file_id": item.file_id}
    rows = ["file_id = {file_id:UInt64}", *slice_conditions(item, params)]
    return f"SELECT count() AS n FROM {EVENTS} {where(rows)}", params


DELETE_FILES = f"DELETE FROM {EVENTS} WHERE file_id IN {{ids:Array(UInt64)}}"
FILES_PRESENT = f"SELECT DISTINCT file_id FROM {EVENTS} WHERE file_id IN {{ids:Array(UInt64)}}"
COUNT_ALL = f"SELECT count() AS n FROM {EVENTS}"
COUNT_CASE = f"SELECT count() AS n FROM {EVENTS} WHERE case_id = {{c:UInt32}}"
COUNTS_BY_FILE = (
    f"SELECT file_id, count() AS n FROM {EVENTS} WHERE case_id = {{c:UInt32}} GROUP BY file_id"
)
#: Parts of the events table, from `system.tables` (cheaper than counting `system.parts`).
ACTIVE_PARTS = (
    f"SELECT active_parts AS n FROM system.tables WHERE database = '{DATABASE}' AND name = 'events'"
)
MERGES_RUNNING = f"SELECT count() AS n FROM system.merges WHERE database = '{DATABASE}'"
DISK_BYTES = (
    "SELECT sum(bytes_on_disk) AS b FROM system.parts "
    f"WHERE database = '{DATABASE}' AND table = 'events' AND active"
)
#: Merge the events table's parts now (a server's merges are its own business otherwise).
OPTIMIZE = f"OPTIMIZE TABLE {EVENTS} FINAL"
DELETE_CASE = f"DELETE FROM {EVENTS} WHERE case_id = {{c:UInt32}}"


class Bookkeeping:
    """The statements both transports run the same way, over their own `execute`, `scalar`
    and `_rows` (a mixin of `ChdbIndex` and `ClickHouseServerIndex`)."""

    def execute(self, sql: str, params: Mapping[str, object] | None = None) -> None:
        raise NotImplementedError

    def scalar(self, sql: str, params: Mapping[str, object] | None = None) -> Any:
        raise NotImplementedError

    def _rows(
        self, sql: str, params: Mapping[str, object] | None, seconds: float | None = None
    ) -> list[dict]:
        raise NotImplementedError

    def remove_partial(self, items: Sequence[LoadItem]) -> None:
        """Delete what a failed INSERT of `items` may have written (a multi-block INSERT is
        not atomic): their files' rows, or only the slice's rows for a slice."""
        self.execute(*remove_rows(items))

    def delete_files(self, file_ids: Sequence[int]) -> None:
        if file_ids:
            self.execute(DELETE_FILES, {"ids": list(file_ids)})

    def delete_case(self, case_id: int) -> None:
        """Every event of one case (a case deletion; nothing of any other case)."""
        self.execute(DELETE_CASE, {"c": case_id})

    def active_parts(self) -> int:
        """Parts of the events table (each search reads every part that may match); from
        `system.tables`, which costs less than counting `system.parts`."""
        return int(self.scalar(ACTIVE_PARTS) or 0)

    def files_present(self, file_ids: Sequence[int]) -> set[int]:
        if not file_ids:
            return set()
        rows = self._rows(FILES_PRESENT, {"ids": list(file_ids)})
        return {int(row["file_id"]) for row in rows}

    def rows_present(self, item: LoadItem) -> bool:
        """Whether the index holds any row of `item` (its file, or its slice)."""
        return bool(self.scalar(*rows_present(item)))

    def count(self, case_id: int | None = None) -> int:
        if case_id is None:
            return int(self.scalar(COUNT_ALL) or 0)
        return int(self.scalar(COUNT_CASE, {"c": case_id}) or 0)

    def counts_by_file(self, case_id: int) -> dict[int, int]:
        rows = self._rows(COUNTS_BY_FILE, {"c": case_id})
        return {int(r["file_id"]): int(r["n"]) for r in rows}

    def disk_bytes(self) -> int:
        return int(self.scalar(DISK_BYTES) or 0)

"""Bounds of one index query: its time (per kind of query) and the errors it ends with.

Every query an analyst's action runs on the index (a search page, a count, a facet, the
dashboard, an export chunk, an index-side IOC hunt) carries ClickHouse's
`max_execution_time`: past it chDB stops the query and it ends as `QueryTimeoutError`, a
clear message instead of an index held for as long as the query wants. Loads, deletes and the
owner's bookkeeping are not bounded in time: a load stopped half way would only be retried.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

from casescope.config import Settings
from casescope.errors import IndexMemoryError, QueryTimeoutError


class QueryKind(StrEnum):
    """What a query is for, which decides its time bound."""

    #: A search page, count, facet, event or dashboard: someone waits for the answer.
    INTERACTIVE = "interactive"
    #: One chunk of an export, or an index-side IOC hunt: longer, but still bounded.
    LONG = "long"


@dataclass(frozen=True)
class QueryTimeouts:
    """Seconds a query of each kind may run (CASESCOPE_*QUERY_TIMEOUT_SECONDS)."""

    interactive: float = 30.0
    long: float = 600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> QueryTimeouts:
        return cls(settings.query_timeout_seconds, settings.long_query_timeout_seconds)

    def seconds(self, kind: QueryKind) -> float:
        return self.interactive if kind is QueryKind.INTERACTIVE else self.long


def time_setting(seconds: float) -> str:
    """The SETTINGS item bounding a query to `seconds` (ClickHouse counts microseconds)."""
    return f"max_execution_time = {seconds:.6f}"


def with_settings(sql: str, *settings: str) -> str:
    """`sql` with a SETTINGS clause of the non-empty `settings` (none: `sql` as it is). A
    setting named twice keeps its first value, so the bound, named first, cannot be undone."""
    chosen = [s for s in settings if s]
    return f"{sql} SETTINGS {', '.join(chosen)}" if chosen else sql


#: The name chDB's errors carry when a query or INSERT needs more memory than the index's
#: budget (`chdb_memory.server_settings`) allows.
_MEMORY_LIMIT = "MEMORY_LIMIT_EXCEEDED"


def is_memory_error(error: BaseException) -> bool:
    """Whether `error` is the index running out of its memory budget: chDB's own error (a
    RuntimeError, `chdb.ChdbError`) or the IndexMemoryError `query_errors` makes of it."""
    return isinstance(error, IndexMemoryError) or _MEMORY_LIMIT in str(error)


@contextmanager
def query_errors(seconds: float | None = None) -> Iterator[None]:
    """chDB's MEMORY_LIMIT_EXCEEDED as IndexMemoryError (worth a retry) and its
    TIMEOUT_EXCEEDED as QueryTimeoutError (narrow the query): clear messages for the user."""
    try:
        yield
    except RuntimeError as error:  # chdb.ChdbError (imported only by the owner)
        if is_memory_error(error):
            raise IndexMemoryError(
                "the query needed more memory than the index's budget "
                "(CASESCOPE_INDEX_MEMORY_MB) allows now; retry in a moment (merges after a "
                "large load hold part of it) or narrow the query"
            ) from error
        if "TIMEOUT_EXCEEDED" in str(error) and seconds is not None:
            raise QueryTimeoutError(seconds) from error
        raise

"""Which events a query reads: a WHERE condition over the events table and its parameters.

Services decide what to ask (a search's text and time range, a filter, the events of a
process) and pass it to the store's queries as a `Where`; the SQL text of every condition is
written here or beside the query that uses it (`process_events`), never above the store.
User text only ever travels in `params`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from casescope.store.query import CompiledQuery
from casescope.store.query_sql import EVENT_KEY_SQL, event_key

#: (file id, seq): one event.
EventKey = tuple[int, int]
TS_TEXT = "%Y-%m-%d %H:%M:%S.%f"


@dataclass(frozen=True)
class Where:
    """A condition over the events table (`sql`) and the values of the parameters it names.
    Its top level is an AND of conditions, each of which brackets any OR it holds, so one
    more condition is joined with AND as it is."""

    sql: str
    params: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def all_of(cls, conditions: Sequence[str], params: Mapping[str, object]) -> Where:
        """The AND of `conditions` ("1" for none)."""
        return cls(" AND ".join(conditions) or "1", dict(params))

    def and_(self, *others: Where) -> Where:
        """This condition AND the `others` (their parameters added to these)."""
        params = dict(self.params)
        for other in others:
            params.update(other.params)
        return Where(" AND ".join([self.sql, *(o.sql for o in others)]), params)

    def with_params(self, **extra: object) -> dict[str, object]:
        """These parameters and a query's own (a limit, a cursor), for `EventIndex`."""
        return {**self.params, **extra}


def search_where(
    case_id: int,
    query: CompiledQuery,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Where:
    """The case's events that match `query` from `start` (inclusive) to
    `end` (exclusive)."""
    conditions = ["case_id = {case_id:UInt32}", f"({query.sql})"]
    params: dict[str, object] = {"case_id": case_id, **query.params}
    if start is not None:
        conditions.append("ts >= {t_start:DateTime64(6, 'UTC')}")
        params["t_start"] = start.strftime(TS_TEXT)
    if end is not None:
        conditions.append("ts < {t_end:DateTime64(6, 'UTC')}")
        params["t_end"] = end.strftime(TS_TEXT)
    return Where.all_of(conditions, params)


def among_events(events: Sequence[EventKey]) -> Where:
    """Only these events (none: nothing matches)."""
    if not events:
        return Where("0")
    params: dict[str, object] = {
        "only_files": sorted({file_id for file_id, _ in events}),
        "only_keys": [event_key(file_id, seq) for file_id, seq in events],
    }
    return Where(
        "file_id IN (SELECT arrayJoin({only_files:Array(UInt64)})) AND "
        f"{EVENT_KEY_SQL} IN (SELECT arrayJoin({{only_keys:Array(UInt64)}}))",
        params,
    )


def except_events(events: Sequence[EventKey]) -> Where:
    """Every event but these (hidden ones)."""
    return Where(
        f"{EVENT_KEY_SQL} NOT IN (SELECT arrayJoin({{w_hidden:Array(UInt64)}}))",
        {"w_hidden": [event_key(f, s) for f, s in events]},
    )


def on_channel(channel: str) -> Where:
    return Where("channel = {w_channel:String}", {"w_channel": channel})


def on_computer(computer: str) -> Where:
    return Where("computer = {w_computer:String}", {"w_computer": computer})


def in_file(file_id: int) -> Where:
    return Where("file_id = {w_file:UInt64}", {"w_file": file_id})

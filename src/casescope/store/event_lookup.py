"""Events fetched by their key (file id, seq): what a list of detections or hits shows of each
event (its computer, channel, event id and fields for the summary line).

Detections live in the metadata DB and name their event by (file id, seq); their pages and
the detection timeline read the events of one page or chunk at a time from the index, in
batches of `LOOKUP_BATCH` keys. The index is sorted by (case, ts, file, seq): a batch's time
range (the detections carry their event's time) lets it skip the parts and granules outside.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from casescope.store.events_table import DATABASE, EVENT_COLUMNS
from casescope.store.where import EVENT_KEY_SQL, EventKey, event_key

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

#: Keys per query: 1,000 keys are ~20 KB of query parameters.
LOOKUP_BATCH = 1000
#: What a lookup returns of each event by default.
SUMMARY_COLUMNS = ("computer", "channel", "provider", "event_id", "record_id", "fields")
_ALLOWED = frozenset({"ts", *SUMMARY_COLUMNS, "level", "user_name", "user_sid"})
#: An event without a time is indexed at the epoch (store/events_table.py).
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Slack around a batch's time range (DB times and index times are both microseconds; this
#: only guards against a rounding on either side).
_SLACK = timedelta(seconds=1)


def _bounds(times: Sequence[datetime | None]) -> tuple[str, str]:
    aware = [(t if t.tzinfo else t.replace(tzinfo=UTC)) if t else _EPOCH for t in times]
    low, high = min(aware) - _SLACK, max(aware) + _SLACK
    return (
        low.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
        high.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
    )


def _batch_sql(columns: Sequence[str]) -> str:
    return (
        f"SELECT file_id, seq, {', '.join(columns)} FROM {DATABASE}.events "
        "WHERE case_id = {c:UInt32} "
        "AND ts BETWEEN {lo:DateTime64(6, 'UTC')} AND {hi:DateTime64(6, 'UTC')} "
        "AND file_id IN (SELECT arrayJoin({files:Array(UInt64)})) "
        f"AND {EVENT_KEY_SQL} IN (SELECT arrayJoin({{keys:Array(UInt64)}}))"
    )


def events_by_key(
    index: EventIndex,
    case_id: int,
    wanted: Sequence[tuple[int, int, datetime | None]],
    columns: Sequence[str] = SUMMARY_COLUMNS,
) -> dict[EventKey, dict[str, Any]]:
    """The events `wanted` as (file id, seq, its time or None) of a case, by key: each a dict
    of `columns`. Events not in the index (not loaded yet, or removed) are left out."""
    bad = set(columns) - _ALLOWED
    if bad:
        raise ValueError(f"not a lookup column: {sorted(bad)}")
    sql = _batch_sql(columns)
    found: dict[EventKey, dict[str, Any]] = {}
    for start in range(0, len(wanted), LOOKUP_BATCH):
        batch = wanted[start : start + LOOKUP_BATCH]
        low, high = _bounds([ts for _, _, ts in batch])
        params = {
            "c": case_id,
            "lo": low,
            "hi": high,
            "files": sorted({file_id for file_id, _, _ in batch}),
            "keys": [event_key(file_id, seq) for file_id, seq, _ in batch],
        }
        for row in index.query_rows(sql, params):
            found[(int(row.pop("file_id")), int(row.pop("seq")))] = row
    return found


def get_event(index: EventIndex, case_id: int, file_id: int, seq: int) -> dict[str, Any] | None:
    """One event, all of it (its original record too), or None when the index has no such
    event in the case."""
    rows = index.query_rows(
        f"SELECT {', '.join(EVENT_COLUMNS)} FROM {DATABASE}.events "
        "WHERE case_id = {c:UInt32} AND file_id = {f:UInt64} AND seq = {s:UInt64} LIMIT 1",
        {"c": case_id, "f": file_id, "s": seq},
    )
    return rows[0] if rows else None


def event_times(
    index: EventIndex, case_id: int, keys: Sequence[EventKey]
) -> dict[EventKey, datetime]:
    """The time of each of `keys` that the index holds in the case (for events known only by
    their key, such as marked ones, before a lookup by time range). Files and keys narrow the
    read; there is no time bound to skip parts by, so callers keep `keys` to a story's size."""
    found: dict[EventKey, datetime] = {}
    for start in range(0, len(keys), LOOKUP_BATCH):
        batch = keys[start : start + LOOKUP_BATCH]
        params = {
            "c": case_id,
            "files": sorted({file_id for file_id, _ in batch}),
            "keys": [event_key(file_id, seq) for file_id, seq in batch],
        }
        sql = (
            f"SELECT file_id, seq, ts FROM {DATABASE}.events WHERE case_id = {{c:UInt32}} "
            "AND file_id IN (SELECT arrayJoin({files:Array(UInt64)})) "
            f"AND {EVENT_KEY_SQL} IN (SELECT arrayJoin({{keys:Array(UInt64)}}))"
        )
        for row in index.query_rows(sql, params):
            found[(int(row["file_id"]), int(row["seq"]))] = _utc(row["ts"])
    return found


def _utc(value: datetime | str) -> datetime:
    """An index time (text such as `2024-03-01 10:00:00.123456`, or a datetime) as aware UTC."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

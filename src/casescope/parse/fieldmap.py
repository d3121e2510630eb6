"""Flat records (NDJSON, CSV): flattening, and the rules that find the core columns in them.

Flattening: nested objects become dotted keys (`{"host": {"name": "x"}}` → `host.name`);
lists, and objects left at a leaf, are compact JSON; numbers as JSON writes them; booleans
`true`/`false`; nulls are dropped.

Core columns: each takes the first field present from its candidate list (`CANDIDATES`),
compared exactly first and then ignoring case; a value that does not fit the column (an
event id that is not a number) leaves it null. `--map COLUMN=FIELD` (`field_map`) puts FIELD
before the candidates. Every field stays in `fields` whether or not a core column used it.
Timestamps are parsed per batch by `timestamps.parse_timestamps`. See docs/parsing.md.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import lru_cache

import orjson

from casescope.parse.columns import UINT8_MAX, UINT32_MAX, UINT64_MAX, EventColumns, as_uint

logger = logging.getLogger(__name__)

CANDIDATES: dict[str, tuple[str, ...]] = {
    "ts": (
        "@timestamp",
        "timestamp",
        "Timestamp",
        "TimeCreated",
        "UtcTime",
        "EventTime",
        "TimeGenerated",
        "time",
        "_time",
        "datetime",
        "date",
        "ts",
        "Event.System.TimeCreated.#attributes.SystemTime",
        "Event.System.TimeCreated_attributes.SystemTime",
        "Event.System.TimeCreated.SystemTime",
        "System.TimeCreated.SystemTime",
        "TimeCreated.SystemTime",
        "event.created",
    ),
    "event_id": (
        "EventID",
        "event_id",
        "EventId",
        "event.code",
        "winlog.event_id",
        "Event.System.EventID",
        "Event.System.EventID.#text",
        "System.EventID",
        "System.EventID.Value",
    ),
    "channel": (
        "Channel",
        "channel",
        "winlog.channel",
        "LogName",
        "log_name",
        "Event.System.Channel",
        "System.Channel",
    ),
    "provider": (
        "Provider_Name",
        "Provider",
        "provider",
        "ProviderName",
        "SourceName",
        "winlog.provider_name",
        "event.provider",
        "Event.System.Provider.#attributes.Name",
        "Event.System.Provider_attributes.Name",
        "System.Provider.Name",
    ),
    "computer": (
        "Computer",
        "computer",
        "ComputerName",
        "hostname",
        "Hostname",
        "host.name",
        "host.hostname",
        "agent.hostname",
        "host",
        "Event.System.Computer",
        "System.Computer",
    ),
    "record_id": (
        "EventRecordID",
        "record_id",
        "RecordID",
        "RecordNumber",
        "winlog.record_id",
        "Event.System.EventRecordID",
        "System.EventRecordID",
    ),
    "level": ("Level", "level", "Event.System.Level", "System.Level"),
    "user_name": (
        "TargetUserName",
        "SubjectUserName",
        "User",
        "UserName",
        "user.name",
        "username",
        "user",
    ),
    "user_sid": ("TargetUserSid", "SubjectUserSid", "UserSid", "UserID", "user.id", "sid"),
}

CORE_NAMES = tuple(CANDIDATES)
Overrides = tuple[tuple[str, str], ...]


def check_field_map(field_map: Mapping[str, str] | None) -> Overrides:
    """The map as a hashable tuple; unknown column names are an error."""
    unknown = sorted(set(field_map or {}) - set(CORE_NAMES))
    if unknown:
        raise ValueError(
            f"field map: unknown column(s) {', '.join(unknown)}; use {', '.join(CORE_NAMES)}"
        )
    return tuple(sorted((field_map or {}).items()))


def scalar_text(value: object) -> str | None:
    """A leaf value as the string stored in `fields` (None: drop it)."""
    if type(value) is str:
        return value
    if value is None:
        return None
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is int:
        return str(value)
    return orjson.dumps(value).decode()  # floats as JSON writes them; lists as compact JSON


def flatten(obj: Mapping[str, object], out: dict[str, str], prefix: str = "") -> dict[str, str]:
    """Flatten nested objects into `out` with dotted keys (returns `out`)."""
    for key, value in obj.items():
        kind = type(value)
        if kind is str:
            out[prefix + key] = value
        elif kind is dict:
            flatten(value, out, f"{prefix}{key}.")  # type: ignore[arg-type]
        else:
            text = scalar_text(value)
            if text is not None:
                out[prefix + key] = text
    return out


@lru_cache(maxsize=4096)
def resolve(keys: tuple[str, ...], overrides: Overrides) -> tuple[str | None, ...]:
    """For one shape of record (its keys), the field feeding each core column (or None)."""
    present = set(keys)
    lowered: dict[str, str] = {}
    for key in keys:
        lowered.setdefault(key.lower(), key)
    mapped = dict(overrides)
    chosen: list[str | None] = []
    for column in CORE_NAMES:
        found = None
        if column in mapped:  # the analyst's choice first, exact or ignoring case
            found = _find((mapped[column],), present, lowered)
        if found is None:
            found = _find(CANDIDATES[column], present, lowered)
        chosen.append(found)
    return tuple(chosen)


def _find(names: tuple[str, ...], present: set[str], lowered: dict[str, str]) -> str | None:
    """The first of `names` present exactly, else the first present ignoring case."""
    found = next((name for name in names if name in present), None)
    if found is None:
        found = next((lowered[n.lower()] for n in names if n.lower() in lowered), None)
    return found


def add_flat(columns: EventColumns, fields: dict[str, str], raw: str, overrides: Overrides) -> None:
    """Append one flat record: every field kept, core columns found by the rules."""
    ts, event_id, channel, provider, computer, record_id, level, user, sid = (
        fields.get(k) if k is not None else None for k in resolve(tuple(fields), overrides)
    )
    columns.ts.append(ts)
    columns.event_id.append(as_uint(event_id, UINT32_MAX) if event_id else None)
    columns.channel.append(channel or "")
    columns.provider.append(provider or "")
    columns.computer.append(computer or "")
    columns.record_id.append(as_uint(record_id, UINT64_MAX) if record_id else None)
    columns.level.append(as_uint(level, UINT8_MAX) if level else None)
    columns.user_name.append(user or "")
    columns.user_sid.append(sid or "")
    columns.keys.extend(fields)
    columns.values.extend(fields.values())
    columns.end_event()
    columns.raw.append(raw)

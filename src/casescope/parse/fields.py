"""Flattening records to string fields, and finding the core columns in them.

Rules (documented for analysts in docs/parsing.md):
- nested objects become dotted keys (`host.name`); lists and objects left at a leaf are
  compact JSON; numbers as JSON writes them; booleans `true`/`false`; nulls are dropped;
- each core column is taken from the first present field of its candidate list, matched
  exactly first and then case-insensitively; `--map COLUMN=FIELD` puts FIELD first.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import orjson

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
        "TimeCreated.SystemTime",
        "System.TimeCreated.SystemTime",
        "event.created",
    ),
    "event_id": (
        "EventID",
        "event_id",
        "EventId",
        "event.code",
        "winlog.event_id",
        "Event.System.EventID",
        "System.EventID",
        "EventID.#text",
        "System.EventID.Value",
    ),
    "channel": ("Channel", "channel", "winlog.channel", "LogName", "log_name", "System.Channel"),
    "provider": (
        "Provider_Name",
        "Provider",
        "provider",
        "ProviderName",
        "winlog.provider_name",
        "event.provider",
        "SourceName",
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
        "System.Computer",
    ),
    "record_id": (
        "EventRecordID",
        "record_id",
        "RecordNumber",
        "winlog.record_id",
        "System.EventRecordID",
    ),
    "level": ("Level", "level", "System.Level"),
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


def scalar_text(value: object) -> str | None:
    """A leaf value as the string stored in `fields` (None: drop it)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def flatten(obj: Mapping[str, object], out: dict[str, str], prefix: str = "") -> dict[str, str]:
    """Flatten nested objects into `out` with dotted keys."""
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flatten(value, out, f"{name}.")
            continue
        text = scalar_text(value)
        if text is not None:
            out[name] = text
    return out


@lru_cache(maxsize=4096)
def _resolve(
    keys: tuple[str, ...], overrides: tuple[tuple[str, str], ...]
) -> tuple[str | None, ...]:
    """For one shape of record (its key set), which key feeds each core column."""
    present = set(keys)
    lowered = {k.lower(): k for k in reversed(keys)}
    override = dict(overrides)
    chosen: list[str | None] = []
    for column in CORE_NAMES:
        names = ((override[column],) if column in override else ()) + CANDIDATES[column]
        found = next((n for n in names if n in present), None)
        if found is None:
            found = next((lowered[n.lower()] for n in names if n.lower() in lowered), None)
        chosen.append(found)
    return tuple(chosen)


def core_keys(fields: Mapping[str, str], overrides: tuple[tuple[str, str], ...]) -> tuple:
    """The field names feeding each core column (cached per record shape)."""
    return _resolve(tuple(fields), overrides)

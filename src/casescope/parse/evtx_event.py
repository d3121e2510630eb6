"""Normalise one Windows event given as the `evtx` crate's JSON (also used for EVTX exported
as JSON lines by Hayabusa, Chainsaw or Velociraptor).

`fields` holds every EventData/UserData value under its XML name. UserData's wrapper element
(e.g. `LogFileCleared`) is dropped so its children keep their plain names, as Sigma expects;
`#attributes` (xmlns noise) are dropped; unnamed `<Data>` elements become one `Data` field
(compact JSON when there are several).
"""

from __future__ import annotations

from collections.abc import Mapping

from casescope.parse.batch import CoreValues
from casescope.parse.fields import scalar_text
from casescope.parse.timestamps import to_epoch_us


def _attr(node: object, name: str) -> object:
    if isinstance(node, dict):
        attributes = node.get("#attributes")
        if isinstance(attributes, dict):
            return attributes.get(name)
    return None


def _text(value: object) -> object:
    """`{"#attributes": ..., "#text": x}` -> x; anything else unchanged."""
    if isinstance(value, dict) and "#text" in value:
        return value["#text"]
    return value


def _int(value: object) -> int | None:
    value = _text(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str):
        try:
            return int(value, 0) if value.startswith("0x") else int(value)
        except ValueError:
            return None
    return None


UINT64_MAX = 2**64 - 1
UINT32_MAX = 2**32 - 1
UINT8_MAX = 255


def bounded(value: int | None, limit: int) -> int | None:
    """A value that fits its Arrow column, or None."""
    return value if value is not None and 0 <= value <= limit else None


def _put(out: dict[str, str], key: str, value: object) -> None:
    value = _text(value)
    if isinstance(value, dict):
        for sub_key, sub_value in value.items():
            if sub_key != "#attributes":
                _put(out, f"{key}.{sub_key}", sub_value)
        return
    text = scalar_text(value)
    if text is not None:
        out[key] = text


def _data_elements(value: object, out: dict[str, str]) -> None:
    """`<Data>` children: named ones by name, unnamed ones collected under `Data`."""
    items = value if isinstance(value, list) else [value]
    unnamed: list[object] = []
    for item in items:
        name = _attr(item, "Name")
        if isinstance(name, str):
            _put(out, name, item)
        elif item is not None:
            unnamed.append(_text(item))
    if unnamed:
        _put(out, "Data", unnamed[0] if len(unnamed) == 1 else unnamed)


def flatten_event_data(event_data: object, out: dict[str, str]) -> None:
    if isinstance(event_data, dict):
        for key, value in event_data.items():
            kind = type(value)  # fast paths first: almost every value is a str or an int
            if kind is str:
                out[key] = value
            elif kind is int:
                out[key] = str(value)
            elif key == "#attributes":
                continue
            elif key == "Data":
                _data_elements(value, out)
            else:
                _put(out, key, value)
    elif event_data is not None:
        _data_elements(event_data, out)


def flatten_user_data(user_data: object, out: dict[str, str]) -> None:
    if not isinstance(user_data, dict):
        if user_data is not None:
            _put(out, "UserData", user_data)
        return
    for wrapper in user_data.values():
        if isinstance(wrapper, dict):
            for key, value in wrapper.items():
                if key != "#attributes":
                    _put(out, key, value)
        else:
            _put(out, "UserData", wrapper)


def _number(value: object, limit: int) -> int | None:
    """Fast path for the usual plain int; anything else goes the long way."""
    if type(value) is int:
        return value if 0 <= value <= limit else None
    return bounded(_int(value), limit)


def _system_time(system: Mapping[str, object]) -> int | None:
    created = system.get("TimeCreated")
    if type(created) is dict:  # fast path: {"#attributes": {"SystemTime": "..."}}
        attributes = created.get("#attributes")
        if type(attributes) is dict and "SystemTime" in attributes:
            return to_epoch_us(attributes["SystemTime"])
    value = _attr(created, "SystemTime")
    if value is None:
        value = _attr({"#attributes": system.get("TimeCreated_attributes")}, "SystemTime")
    if value is None and isinstance(created, dict):
        value = created.get("SystemTime")
    return to_epoch_us(value)


def _provider(system: Mapping[str, object]) -> str:
    provider = system.get("Provider")
    if type(provider) is dict:  # fast path: {"#attributes": {"Name": "..."}}
        attributes = provider.get("#attributes")
        if type(attributes) is dict and type(attributes.get("Name")) is str:
            return attributes["Name"]
    name = _attr(provider, "Name")
    if name is None and isinstance(provider, dict):
        name = provider.get("Name")
    if name is None:
        name = (system.get("Provider_attributes") or {}).get("Name")  # type: ignore[union-attr]
    return name if isinstance(name, str) else ""


def _user_sid(system: Mapping[str, object], fields: Mapping[str, str]) -> str:
    sid = _attr(system.get("Security"), "UserID")
    if not isinstance(sid, str):
        sid = fields.get("TargetUserSid") or fields.get("SubjectUserSid") or ""
    return sid


def _user_name(fields: Mapping[str, str]) -> str:
    for key in ("TargetUserName", "SubjectUserName", "User", "UserName"):
        value = fields.get(key)
        if value:
            return value
    return ""


def normalise_event(
    event: Mapping[str, object], ts_fallback: object = None
) -> tuple[CoreValues, dict[str, str]]:
    """Core columns and fields of one `{"System": ..., "EventData"/"UserData": ...}` event."""
    system = event.get("System")
    if not isinstance(system, dict):
        system = {}
    fields: dict[str, str] = {}
    flatten_event_data(event.get("EventData"), fields)
    flatten_user_data(event.get("UserData"), fields)
    ts = _system_time(system)
    channel, computer = system.get("Channel"), system.get("Computer")
    core: CoreValues = (
        ts if ts is not None else to_epoch_us(ts_fallback),
        _number(system.get("EventID"), UINT32_MAX),
        channel if isinstance(channel, str) else "",
        _provider(system),
        computer if isinstance(computer, str) else "",
        _number(system.get("EventRecordID"), UINT64_MAX),
        _number(system.get("Level"), UINT8_MAX),
        _user_name(fields),
        _user_sid(system, fields),
    )
    return core, fields

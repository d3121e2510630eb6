"""One Windows event, given as the `evtx` crate's JSON (or an exporter's JSON of the same
XML), appended to a batch: core columns from System, `fields` from EventData/UserData.

Rules for `fields` (also in docs/parsing.md):

- EventData: each named `<Data>` under its name. Unnamed `<Data>` elements become one `Data`
  field, their values joined by a newline (what Sigma's `Data|contains` expects: the text,
  not JSON with escaped backslashes).
- UserData: the wrapper element (`LogFileCleared`, `EventXML`, …) is dropped and its children
  keep their plain names, as Sigma rules expect.
- Deeper nesting is joined with dots (`Parent.Child`); `{"#attributes": …, "#text": v}` is `v`.
- Attributes whose name starts with `xmlns` are dropped (namespace noise: 282 of the 284
  attributes under EventData/UserData in the attack samples); any other attribute is kept as
  `<element>.<attribute>` (e.g. `EventData.Name`). Exporters' `X_attributes` objects
  (`separate_json_attributes`) are read the same way as `X/#attributes`.
- Other top-level elements besides System (`ProcessingErrorData`, `RenderingInfo`, …) are
  kept with their name as a prefix (`ProcessingErrorData.ErrorCode`).
- Values are strings: ints in decimal, booleans `true`/`false`, floats and lists as JSON
  writes them (compact); nulls are dropped.

Core columns: `ts` from `TimeCreated/@SystemTime`, `event_id` from `EventID` (its
`Qualifiers` attribute dropped), `provider` from `Provider/@Name`, `user_sid` from
`Security/@UserID` else `TargetUserSid`/`SubjectUserSid`, `user_name` from the first
non-empty `TargetUserName`, `SubjectUserName`, `User`, `UserName`.
A number that does not fit its column (negative, too large, not a number) is null.

`crate_adder` is the hot path for the crate's own, always identical shape: one pass with no
nested calls for the common case; anything unusual goes through `add_event`, the general
form, which gives the same result (tested on every attack sample).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import orjson

from casescope.parse.columns import UINT8_MAX, UINT32_MAX, UINT64_MAX, EventColumns, as_uint

logger = logging.getLogger(__name__)

_SKIPPED_ELEMENTS = frozenset(("#attributes", "System", "EventData"))
_ATTRIBUTES_SUFFIX = "_attributes"  # how separate_json_attributes exports name them
_PLAIN = frozenset((str, int))  # EventData values that need no flattening
_FIVE_STRINGS = (str, str, str, str, str)


def crate_adder(columns: EventColumns) -> Callable[[dict, str], bool]:
    """`add(event, raw)` for the crate's usual shape in one pass, without nested calls; it
    returns False, having appended nothing, for any other shape (then use `add_event`)."""
    ts_, event_id_, channel_ = columns.ts.append, columns.event_id.append, columns.channel.append
    provider_, computer_ = columns.provider.append, columns.computer.append
    record_id_, level_ = columns.record_id.append, columns.level.append
    user_name_, user_sid_ = columns.user_name.append, columns.user_sid.append
    keys = columns.keys
    keys_, values_ = keys.extend, columns.values.extend
    offsets_, raw_ = columns.offsets.append, columns.raw.append

    def add(event: dict, raw: str) -> bool:
        try:
            system = event["System"]
            ts = system["TimeCreated"]["#attributes"]["SystemTime"]
            provider = system["Provider"]["#attributes"]["Name"]
            security = system.get("Security")
            sid = security["#attributes"]["UserID"] if security else ""
            channel, computer = system["Channel"] or "", system["Computer"]
            event_id, record_id, level = system["EventID"], system["EventRecordID"], system["Level"]
        except (KeyError, TypeError):
            return False
        kinds = (type(ts), type(provider), type(sid), type(channel), type(computer))
        if kinds != _FIVE_STRINGS or type(record_id) is not int or type(level) is not int:
            return False
        data = event.get("EventData")
        if type(data) is dict and len(event) == 3 and _PLAIN.issuperset(map(type, data.values())):
            fields = data  # the common case: no copy; ints become strings in `flush`
        else:
            fields = event_fields(event)
        ts_(ts)
        event_id_(event_id if type(event_id) is int else _event_id(event_id))
        channel_(channel)
        provider_(provider)
        computer_(computer)
        record_id_(record_id)
        level_(level)
        user_name_(_user_name(fields))
        user_sid_(sid or _string(fields.get("TargetUserSid") or fields.get("SubjectUserSid")))
        keys_(fields)
        values_(fields.values())
        offsets_(len(keys))
        raw_(raw)
        return True

    return add


def event_fields(event: Mapping[str, object]) -> dict[str, str]:
    """`fields` of one event: EventData, UserData and other elements, by the module's rules."""
    fields: dict[str, str] = {}
    data = event.get("EventData")
    if type(data) is dict:
        _event_data(data, fields)
    elif data is not None:
        _data_elements(data, fields)
    _rest(event, fields)
    return fields


def _user_name(fields: Mapping[str, object]) -> str:
    name = (
        fields.get("TargetUserName")
        or fields.get("SubjectUserName")
        or fields.get("User")
        or fields.get("UserName")
    )
    return name if type(name) is str else _scalar(name) or ""


def add_event(columns: EventColumns, event: Mapping[str, object], raw: str) -> None:
    """Append one `{"System": …, "EventData"/"UserData": …}` event to the batch."""
    system = event.get("System")
    if type(system) is not dict:
        system = {}
    fields = event_fields(event)
    _add_system(columns, system, fields)
    columns.keys.extend(fields)
    columns.values.extend(fields.values())
    columns.end_event()
    columns.raw.append(raw)


def _add_system(columns: EventColumns, system: dict, fields: Mapping[str, str]) -> None:
    columns.ts.append(_system_time(system))
    columns.event_id.append(_event_id(system.get("EventID")))
    columns.channel.append(_string(system.get("Channel")))
    columns.provider.append(_attribute(system, "Provider", "Name"))
    columns.computer.append(_string(system.get("Computer")))
    columns.record_id.append(as_uint(_text(system.get("EventRecordID")), UINT64_MAX))
    columns.level.append(as_uint(_text(system.get("Level")), UINT8_MAX))
    columns.user_name.append(_user_name(fields))
    sid = _attribute(system, "Security", "UserID")
    columns.user_sid.append(
        sid or fields.get("TargetUserSid") or fields.get("SubjectUserSid") or ""
    )


def _string(value: object) -> str:
    if type(value) is str:
        return value
    value = _text(value)
    return value if isinstance(value, str) else ""


def _text(value: object) -> object:
    """`{"#attributes": …, "#text": x}` → x (also Velociraptor's `{"Value": x}`)."""
    if type(value) is dict:
        if "#text" in value:
            return value["#text"]
        if "Value" in value:
            return value["Value"]
    return value


def _event_id(value: object) -> int | None:
    if type(value) is int:
        return value if 0 <= value <= UINT32_MAX else None
    return as_uint(_text(value), UINT32_MAX)  # Qualifiers dropped with the attributes


def _attribute(system: dict, element: str, name: str) -> str:
    """`element/@name` in any of the JSON shapes exporters use."""
    node = system.get(element)
    if type(node) is dict:
        attributes = node.get("#attributes")
        value = attributes.get(name) if type(attributes) is dict else node.get(name)
        if value is not None:
            return value if type(value) is str else _scalar(value) or ""
    attributes = system.get(element + _ATTRIBUTES_SUFFIX)  # separate_json_attributes form
    if type(attributes) is dict and attributes.get(name) is not None:
        return _scalar(attributes[name]) or ""
    return ""


def _system_time(system: dict) -> str | None:
    created = system.get("TimeCreated")
    if type(created) is dict:
        attributes = created.get("#attributes")
        if type(attributes) is dict:
            value = attributes.get("SystemTime")
            if type(value) is str:
                return value
    value = _attribute(system, "TimeCreated", "SystemTime")
    if value:
        return value
    return created if isinstance(created, str) and created else None


# --- EventData / UserData → fields ---------------------------------------------------------


def _event_data(data: dict, out: dict[str, str]) -> None:
    for key, value in data.items():
        kind = type(value)  # fast paths first: almost every value is a str or an int
        if kind is str:
            out[key] = value
        elif kind is int:
            out[key] = str(value)
        elif value is None:
            continue
        elif key == "#attributes":
            _attributes("EventData", value, out)
        elif key.endswith(_ATTRIBUTES_SUFFIX) and type(value) is dict:
            _attributes(key.removesuffix(_ATTRIBUTES_SUFFIX), value, out)
        elif key == "Data":
            _data_elements(value, out)
        else:
            _put(out, key, value)


def _data_elements(value: object, out: dict[str, str]) -> None:
    """`<Data>` children: named ones by name, unnamed ones joined into one `Data` field."""
    items = value if type(value) is list else [value]
    unnamed: list[str] = []
    for item in items:
        name = _name_attribute(item)
        if name is not None:
            _put(out, name, _text(item))
            continue
        item = _text(item)
        for text in item if type(item) is list else [item]:
            unnamed.append("" if text is None else _scalar(text) or "")
    if unnamed and any(unnamed):
        out["Data"] = "\n".join(unnamed)


def _name_attribute(item: object) -> str | None:
    if type(item) is dict:
        attributes = item.get("#attributes")
        if type(attributes) is dict and type(attributes.get("Name")) is str:
            return attributes["Name"]
    return None


def _user_data(user_data: object, out: dict[str, str]) -> None:
    if type(user_data) is not dict:
        _put(out, "UserData", user_data)
        return
    for wrapper, content in user_data.items():
        if wrapper == "#attributes":
            _attributes("UserData", content, out)
        elif wrapper.endswith(_ATTRIBUTES_SUFFIX):  # separate_json_attributes form
            _attributes(wrapper.removesuffix(_ATTRIBUTES_SUFFIX), content, out)
        elif type(content) is dict:
            for key, value in content.items():
                if key == "#attributes":
                    _attributes(wrapper, value, out)
                elif key.endswith(_ATTRIBUTES_SUFFIX) and type(value) is dict:
                    _attributes(key.removesuffix(_ATTRIBUTES_SUFFIX), value, out)
                else:
                    _put(out, key, value)
        else:
            _put(out, wrapper, content)


def _rest(event: Mapping[str, object], out: dict[str, str]) -> None:
    """UserData, and any other element besides System/EventData under its own name."""
    for name, value in event.items():
        if name in _SKIPPED_ELEMENTS or name.endswith(_ATTRIBUTES_SUFFIX) or value is None:
            continue
        if name == "UserData":
            _user_data(value, out)
        else:
            _put(out, name, value)


def _attributes(element: str, attributes: object, out: dict[str, str]) -> None:
    if type(attributes) is not dict:
        return
    for name, value in attributes.items():
        if not name.startswith("xmlns"):
            _put(out, f"{element}.{name}", value)


def _put(out: dict[str, str], key: str, value: object) -> None:
    """One value under `key`; objects are flattened with dotted keys."""
    if type(value) is dict:
        if "#text" in value:
            _put(out, key, value["#text"])
        for sub_key, sub_value in value.items():
            if sub_key == "#attributes":
                _attributes(key, sub_value, out)
            elif sub_key.endswith(_ATTRIBUTES_SUFFIX) and type(sub_value) is dict:
                _attributes(f"{key}.{sub_key.removesuffix(_ATTRIBUTES_SUFFIX)}", sub_value, out)
            elif sub_key != "#text":
                _put(out, f"{key}.{sub_key}", sub_value)
        return
    text = _scalar(value)
    if text is not None:
        out[key] = text


def _scalar(value: object) -> str | None:
    """A leaf value as stored in `fields` (None: leave it out)."""
    if type(value) is str:
        return value
    if value is None:
        return None
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is int:
        return str(value)
    return orjson.dumps(value).decode()  # floats as JSON writes them; lists as compact JSON

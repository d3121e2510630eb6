"""Hayabusa's `details` templates: one line that says what a hit is about.

A Hayabusa rule may carry `details: 'Path: %TargetFilename% ¦ Proc: %Image%'`: each
`%Name%` is the value of that field of the event the rule fired on. Names are found by key
(`atoms.name_key`: `%ThreatName%` finds `Threat Name`), then through the rule set's aliases
(`%ComputerName%` -> `Event.System.Computer`); `%Data%` is every unnamed `<Data>` value and
`%Data[2]%` the second. A field the event lacks shows as `n/a`, as Hayabusa shows it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from casescope.detect.atoms import KEYWORDS, field_key, name_key

MISSING = "n/a"
_PLACEHOLDER = re.compile(r"%([A-Za-z0-9_.\- ]+?)(?:\[(\d+)\])?%")
_BREAKS = re.compile(r"[\r\n\t]+")
#: Field keys of the core columns, as `atoms.field_key` gives them, and their Sigma names.
_CORE_NAMES = {
    "@event_id": "EventID",
    "@channel": "Channel",
    "@provider": "Provider_Name",
    "@computer": "Computer",
    "@record_id": "EventRecordID",
    "@level": "Level",
}


def _lookup(name: str, by_key: Mapping[str, str], aliases: Mapping[str, str]) -> str | None:
    found = by_key.get(name_key(name))
    if found is None and name in aliases:
        key = field_key(aliases[name])
        found = by_key.get(name_key(_CORE_NAMES.get(key, key)))
        if key == KEYWORDS:
            found = " ".join(by_key.values())
    return found


def render_details(
    template: str, fields: Mapping[str, object], aliases: Mapping[str, str] | None = None
) -> str:
    """`template` with each `%Name%` replaced by the event's value of that field.

    `fields`: the event's fields by name, core columns under their Sigma names (`EventID`,
    `Computer`...); the first of two names with one key wins. `aliases`: the rule set's
    field aliases (`LoadedRule.aliases`, `rules.aliases`)."""
    by_key: dict[str, str] = {}
    for name, value in fields.items():
        if value is not None:
            by_key.setdefault(name_key(str(name)), str(value))

    def replace(match: re.Match[str]) -> str:
        value = _lookup(match[1], by_key, aliases or {})
        if value is not None and match[2] is not None:  # `%Data[2]%`: one unnamed value
            items = value.split("\n")
            index = int(match[2]) - 1
            value = items[index] if 0 <= index < len(items) else None
        return MISSING if value is None else _BREAKS.sub(" ", value).strip()

    return _PLACEHOLDER.sub(replace, template)

"""Condition forms (and/or/not, 1 of/all of, them, parentheses) and keyword searches."""

from __future__ import annotations

import pytest

from tests.unit.detect.support import SYSMON, compile_text, fired, make_batch, rule_text

EVENTS = [
    {"EventID": 1, "Channel": SYSMON, "Image": r"C:\w\cmd.exe", "CommandLine": "cmd /c whoami"},
    {"EventID": 1, "Channel": SYSMON, "Image": r"C:\t\evil.exe", "CommandLine": "evil -x"},
    {"EventID": 1, "Channel": SYSMON, "Image": r"C:\w\note.exe", "CommandLine": "note"},
    {"EventID": 1, "Channel": SYSMON, "Image": r"C:\t\cmd.exe", "CommandLine": "cmd /c evil"},
]
SELECTIONS = (
    "  sel_cmd: {Image|endswith: '\\cmd.exe'}\n"
    "  sel_evil: {CommandLine|contains: evil}\n"
    "  filter_t: {Image|contains: '\\t\\'}\n"
)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("sel_cmd", [0, 3]),
        ("sel_cmd and sel_evil", [3]),
        ("sel_cmd or sel_evil", [0, 1, 3]),
        ("sel_cmd and not filter_t", [0]),
        ("not sel_cmd", [1, 2]),
        ("not (sel_cmd or sel_evil)", [2]),
        ("1 of sel_*", [0, 1, 3]),
        ("all of sel_*", [3]),
        ("1 of sel_* and not 1 of filter_*", [0]),
        ("1 of them", [0, 1, 3]),
        ("all of them", [3]),
        ("(sel_cmd and sel_evil) or (filter_t and not sel_cmd)", [1, 3]),
    ],
)
def test_condition_forms(condition: str, expected: list[int]) -> None:
    text = rule_text(f"{SELECTIONS}  condition: {condition}")
    assert fired(compile_text(text), make_batch(EVENTS)) == expected


def test_a_list_of_maps_is_an_or_and_a_map_is_an_and() -> None:
    detection = (
        "  sel:\n"
        "    - Image|endswith: '\\note.exe'\n"
        "    - Image|endswith: '\\cmd.exe'\n"
        "      CommandLine|contains: evil\n"
        "  condition: sel\n"
    )
    assert fired(compile_text(rule_text(detection)), make_batch(EVENTS)) == [2, 3]


def test_several_conditions_are_alternatives() -> None:
    detection = (
        f"{SELECTIONS}  condition:\n    - sel_evil and not sel_cmd\n    - filter_t and sel_cmd\n"
    )
    assert fired(compile_text(rule_text(detection)), make_batch(EVENTS)) == [1, 3]


def test_a_filter_on_a_field_the_event_lacks_does_not_exclude_it() -> None:
    detection = "  sel: {Image|endswith: '.exe'}\n  filter: {Hashes|contains: x}\n"
    text = rule_text(detection + "  condition: sel and not filter")
    assert fired(compile_text(text), make_batch(EVENTS)) == [0, 1, 2, 3]


SYSTEM = [
    {
        "EventID": 7045,
        "Channel": "System",
        "ServiceName": "evilsvc",
        "ImagePath": r"C:\mimikatz.exe",
    },
    {"EventID": 7045, "Channel": "System", "ServiceName": "good", "ImagePath": r"C:\ok.exe"},
    {"EventID": 104, "Channel": "System", "Data": "the MIMIKATZ log"},
    {"EventID": 1, "Channel": SYSMON, "CommandLine": "mimikatz.exe"},  # other channel
]


@pytest.mark.parametrize(
    ("detection", "expected"),
    [
        ("  keywords: [mimikatz]\n  condition: keywords", [0, 2]),
        ("  keywords: ['mimi*.exe']\n  condition: keywords", [0]),
        ("  keywords: ['nothing']\n  condition: keywords", []),
        ("  keywords: [mimikatz]\n  sel: {EventID: 7045}\n  condition: keywords and sel", [0]),
        ("  keywords: [mimikatz]\n  condition: not keywords", [1]),
        ("  keywords:\n    '|all': [evil, mimikatz]\n  condition: keywords", [0]),
        ("  keywords:\n    '|re': 'mimi[a-z]+ log'\n  condition: keywords", []),
        ("  keywords:\n    '|re': 'MIMI[A-Z]+ log'\n  condition: keywords", [2]),
    ],
)
def test_keywords_search_every_value_of_the_event(detection: str, expected: list[int]) -> None:
    text = rule_text(detection, "service: system")
    assert fired(compile_text(text), make_batch(SYSTEM)) == expected

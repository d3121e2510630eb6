"""Value modifiers and condition forms on hand-made events, positive and negative."""

from __future__ import annotations

import pytest

from casescope.detect.engine import compile_rules
from casescope.detect.load import RuleLoad, load_document
from casescope.parse.batch import BatchBuilder

EVENTS = [  # (event_id, fields)
    (1, {"Image": r"C:\Windows\System32\cmd.exe", "CommandLine": "cmd /c whoami /all"}),
    (1, {"Image": r"C:\Temp\evil.EXE", "CommandLine": "evil -enc SQBFAFgA", "User": "bob"}),
    (1, {"Image": r"C:\Windows\notepad.exe", "CommandLine": "notepad", "ParentImage": "x"}),
    (3, {"Image": r"C:\x\curl.exe", "DestinationIp": "10.1.2.3", "DestinationPort": "4444"}),
    (3, {"Image": r"C:\x\curl.exe", "DestinationIp": "192.168.7.1", "DestinationPort": "80"}),
]


def batch():  # type: ignore[no-untyped-def]
    builder = BatchBuilder()
    for n, (eid, fields) in enumerate(EVENTS):
        core = (
            n,
            eid,
            "Microsoft-Windows-Sysmon/Operational",
            "Microsoft-Windows-Sysmon",
            "PC",
            n,
            4,
            "",
            "",
        )
        builder.add(core, fields, "{}")
    return builder.flush()


def fires(detection: str, category: str = "process_creation") -> list[int]:
    text = (
        "title: t\nid: 00000000-0000-0000-0000-000000000001\nstatus: test\nlevel: high\n"
        f"logsource: {{category: {category}, product: windows}}\ndetection:\n{detection}"
    )
    load = RuleLoad()
    load_document("t.yml", text.encode(), load)
    assert not load.failures, load.failures
    ruleset = compile_rules(load)
    assert ruleset.rules, ruleset.failures
    return sorted(ruleset.evaluate(batch()).column("seq").to_pylist())


@pytest.mark.parametrize(
    ("detection", "expected"),
    [
        ("  sel: {Image|endswith: '\\cmd.exe'}\n  condition: sel", [0]),
        ("  sel: {Image|endswith: '\\EVIL.exe'}\n  condition: sel", [1]),
        ("  sel: {Image|startswith: 'c:\\windows\\'}\n  condition: sel", [0, 2]),
        ("  sel: {CommandLine|contains|all: ['whoami', '/all']}\n  condition: sel", [0]),
        ("  sel: {CommandLine|contains: ['whoami', 'notepad']}\n  condition: sel", [0, 2]),
        ("  sel: {CommandLine|re: '-enc [A-Za-z0-9]+'}\n  condition: sel", [1]),
        ("  sel: {CommandLine|re|i: 'WHOAMI'}\n  condition: sel", [0]),
        ("  sel: {User: null}\n  condition: sel", [0, 2]),
        ("  sel: {ParentImage|exists: true}\n  condition: sel", [2]),
        ("  sel: {Image|cased: 'C:\\Temp\\evil.EXE'}\n  condition: sel", [1]),
        ("  sel: {Image|cased: 'c:\\temp\\evil.exe'}\n  condition: sel", []),
        ("  sel: {CommandLine|windash|contains: '/c '}\n  condition: sel", [0]),
        ("  sel: {CommandLine|base64offset|contains: 'IEX'}\n  condition: sel", []),
        (
            "  sel: {Image|endswith: '.exe'}\n  f: {CommandLine: notepad}\n"
            "  condition: sel and not f",
            [0, 1],
        ),
        (
            "  a: {CommandLine|contains: whoami}\n  b: {CommandLine|contains: evil}\n"
            "  condition: 1 of a or b",
            [0, 1],
        ),
        (
            "  sel_1: {CommandLine|contains: whoami}\n  sel_2: {Image|contains: temp}\n"
            "  condition: 1 of sel_*",
            [0, 1],
        ),
        (
            "  sel_1: {CommandLine|contains: whoami}\n  sel_2: {Image|contains: windows}\n"
            "  condition: all of sel_*",
            [0],
        ),
        ("  keywords: ['SQBFAFgA']\n  condition: keywords", [1]),
    ],
)
def test_process_creation(detection: str, expected: list[int]) -> None:
    assert fires(detection) == expected


def test_cidr_and_numbers_on_network_events() -> None:
    assert fires(
        "  sel: {DestinationIp|cidr: '10.0.0.0/8'}\n  condition: sel", "network_connection"
    ) == [3]
    assert fires("  sel: {DestinationPort|gt: 1000}\n  condition: sel", "network_connection") == [3]
    assert fires("  sel: {DestinationPort: 80}\n  condition: sel", "network_connection") == [4]


def test_fieldref_never_matches_two_missing_fields() -> None:
    assert fires("  sel: {ParentImage|fieldref: Image}\n  condition: sel") == []
    assert fires("  sel: {Nope|fieldref: AlsoMissing}\n  condition: sel") == []

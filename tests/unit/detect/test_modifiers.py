"""Value modifiers and value forms on hand-made events, each with negative cases."""

from __future__ import annotations

import base64

import pytest

from tests.unit.detect.support import SYSMON, compile_text, fired, make_batch, rule_text

B64_WHOAMI = base64.b64encode(b"whoami").decode()  # d2hvYW1p
EVENTS = [
    {  # 0
        "EventID": 1,
        "Channel": SYSMON,
        "Image": r"C:\Windows\System32\cmd.exe",
        "CommandLine": "cmd /c whoami /all",
        "ParentImage": r"C:\Windows\explorer.exe",
        "User": r"PC\bob",
    },
    {  # 1: "SQBFAFgA" is base64 of "IEX" in UTF-16LE
        "EventID": 1,
        "Channel": SYSMON,
        "Image": r"C:\Temp\evil.EXE",
        "CommandLine": "evil -enc SQBFAFgA",
        "User": r"PC\alice",
    },
    {  # 2
        "EventID": 1,
        "Channel": SYSMON,
        "Image": r"C:\Windows\notepad.exe",
        "CommandLine": "notepad",
        "ParentImage": "",
    },
    {  # 3
        "EventID": 3,
        "Channel": SYSMON,
        "Image": r"C:\x\curl.exe",
        "DestinationIp": "10.1.2.3",
        "DestinationPort": "4444",
    },
    {  # 4
        "EventID": 3,
        "Channel": SYSMON,
        "Image": r"C:\x\curl.exe",
        "DestinationIp": "192.168.7.1",
        "DestinationPort": "80",
    },
    {  # 5: Security 4688 uses NewProcessName/ParentProcessName
        "EventID": 4688,
        "Channel": "Security",
        "NewProcessName": r"C:\Windows\System32\whoami.exe",
        "CommandLine": "whoami /priv",
        "ParentProcessName": r"C:\Windows\System32\cmd.exe",
    },
    {  # 6: literal ? and * in a path
        "EventID": 1,
        "Channel": SYSMON,
        "Image": r"C:\Users\x\a?b*.exe",
        "CommandLine": f"powershell -e {B64_WHOAMI}",
        "OriginalFileName": "PowerShell.EXE",
    },
    {  # 7: a multi-line command line
        "EventID": 1,
        "Channel": SYSMON,
        "Image": r"C:\X\Y.exe",
        "CommandLine": "first line\nsecond line",
        "ParentImage": r"c:\x\y.EXE",
    },
    {  # 8: the same event id in another channel never matches a Sysmon rule
        "EventID": 1,
        "Channel": "System",
        "Image": r"C:\Windows\System32\cmd.exe",
        "CommandLine": "cmd /c whoami /all",
    },
]


def fires(detection: str, logsource: str = "category: process_creation") -> list[int]:
    return fired(compile_text(rule_text(detection, logsource)), make_batch(EVENTS))


@pytest.mark.parametrize(
    ("detection", "expected"),
    [
        # plain, startswith, endswith, contains; case-insensitive
        ("  sel: {CommandLine: 'NOTEPAD'}\n  condition: sel", [2]),
        ("  sel: {CommandLine: 'notepa'}\n  condition: sel", []),
        ("  sel: {Image|endswith: '\\cmd.exe'}\n  condition: sel", [0]),
        ("  sel: {Image|endswith: '\\EVIL.exe'}\n  condition: sel", [1]),
        ("  sel: {Image|endswith: '\\evil'}\n  condition: sel", []),
        ("  sel: {Image|startswith: 'c:\\windows\\'}\n  condition: sel", [0, 2, 5]),
        ("  sel: {Image|startswith: 'windows'}\n  condition: sel", []),
        ("  sel: {CommandLine|contains: ['whoami', 'notepad']}\n  condition: sel", [0, 2, 5]),
        ("  sel: {CommandLine|contains: 'WHOAMI /A'}\n  condition: sel", [0]),
        # all
        ("  sel: {CommandLine|contains|all: ['whoami', '/all']}\n  condition: sel", [0]),
        ("  sel: {CommandLine|contains|all: ['whoami', '/none']}\n  condition: sel", []),
        # regular expressions and their flags
        ("  sel: {CommandLine|re: '-enc [A-Za-z0-9]+'}\n  condition: sel", [1]),
        ("  sel: {CommandLine|re: 'WHOAMI'}\n  condition: sel", []),
        ("  sel: {CommandLine|re|i: 'WHOAMI'}\n  condition: sel", [0, 5]),
        ("  sel: {CommandLine|re: '^second'}\n  condition: sel", []),
        ("  sel: {CommandLine|re|m: '^second'}\n  condition: sel", [7]),
        ("  sel: {CommandLine|re: 'line.second'}\n  condition: sel", []),
        ("  sel: {CommandLine|re|s: 'line.second'}\n  condition: sel", [7]),
        # encodings
        ("  sel: {CommandLine|base64|contains: 'whoami'}\n  condition: sel", [6]),
        ("  sel: {CommandLine|base64|contains: 'notepad'}\n  condition: sel", []),
        ("  sel: {CommandLine|wide|base64offset|contains: 'IEX'}\n  condition: sel", [1]),
        ("  sel: {CommandLine|base64offset|contains: 'IEX'}\n  condition: sel", []),
        ("  sel: {CommandLine|utf16be|base64offset|contains: 'IEX'}\n  condition: sel", []),
        ("  sel: {CommandLine|utf16|base64offset|contains: 'IEX'}\n  condition: sel", []),
        # windash: - / – — ― alternatives
        ("  sel: {CommandLine|windash|contains: ' /enc '}\n  condition: sel", [1]),
        ("  sel: {CommandLine|windash|contains: ' -c '}\n  condition: sel", [0]),
        # exists, null, empty
        ("  sel: {ParentImage|exists: true}\n  condition: sel", [0, 2, 5, 7]),
        ("  sel: {ParentImage|exists: false}\n  condition: sel", [1, 6]),
        ("  sel: {User: null}\n  condition: sel", [2, 5, 6, 7]),
        ("  sel: {ParentImage: ''}\n  condition: sel", [2]),
        ("  sel: {ParentImage: '*'}\n  condition: sel", [0, 2, 5, 7]),
        # cased
        ("  sel: {Image|cased: 'C:\\Temp\\evil.EXE'}\n  condition: sel", [1]),
        ("  sel: {Image|cased: 'c:\\temp\\evil.exe'}\n  condition: sel", []),
        ("  sel: {Image|cased|endswith: '.EXE'}\n  condition: sel", [1]),
        # field references (case-insensitive, both fields present)
        ("  sel: {ParentImage|fieldref: Image}\n  condition: sel", [7]),
        ("  sel: {Nope|fieldref: AlsoMissing}\n  condition: sel", []),
        ("  sel: {ParentImage|fieldref|startswith: Image}\n  condition: sel", [7]),
        # wildcards and escaped wildcards (a backslash before * or ? escapes it; \\ is one \)
        ("  sel: {Image: 'c:\\users\\\\*\\a?b*.exe'}\n  condition: sel", [6]),
        ("  sel: {Image|endswith: '\\a\\?b\\*.exe'}\n  condition: sel", [6]),
        ("  sel: {Image|endswith: '\\ab\\*.exe'}\n  condition: sel", []),
        ("  sel: {Image: 'C:\\Windows\\\\*\\cmd.ex?'}\n  condition: sel", [0]),
        ("  sel: {Image: 'C:\\Windows\\\\*\\cmd.e?'}\n  condition: sel", []),
        ("  sel: {Image: 'C:\\Windows\\*\\cmd.exe'}\n  condition: sel", []),
        # numbers and strings: a number in YAML matches the text of the value
        ("  sel: {EventID: 4688}\n  condition: sel", [5]),
        ("  sel: {EventID: '4688'}\n  condition: sel", [5]),
        ("  sel: {OriginalFileName: powershell.exe}\n  condition: sel", [6]),
    ],
)
def test_value_forms(detection: str, expected: list[int]) -> None:
    assert fires(detection) == expected


@pytest.mark.parametrize(
    ("detection", "expected"),
    [
        ("  sel: {DestinationIp|cidr: '10.0.0.0/8'}\n  condition: sel", [3]),
        ("  sel: {DestinationIp|cidr: ['10.9.0.0/16', '192.168.7.0/24']}\n  condition: sel", [4]),
        ("  sel: {DestinationIp|cidr: '172.16.0.0/12'}\n  condition: sel", []),
        ("  sel: {DestinationPort|gt: 1000}\n  condition: sel", [3]),
        ("  sel: {DestinationPort|gte: 4444}\n  condition: sel", [3]),
        ("  sel: {DestinationPort|lt: 80}\n  condition: sel", []),
        ("  sel: {DestinationPort|lte: 80}\n  condition: sel", [4]),
        ("  sel: {DestinationPort: 80}\n  condition: sel", [4]),
    ],
)
def test_network_values(detection: str, expected: list[int]) -> None:
    assert fires(detection, "category: network_connection") == expected


def test_comparisons_ignore_values_that_are_not_numbers() -> None:
    batch = make_batch(
        [
            {"EventID": 3, "Channel": SYSMON, "DestinationPort": "abc"},
            {"EventID": 3, "Channel": SYSMON, "DestinationPort": "65535"},
            {"EventID": 3, "Channel": SYSMON},
        ]
    )
    text = rule_text(
        "  sel: {DestinationPort|gt: 1}\n  condition: sel", "category: network_connection"
    )
    assert fired(compile_text(text), batch) == [1]


def test_security_4688_fields_come_from_the_audit_pipeline() -> None:
    assert fires("  sel: {Image|endswith: '\\whoami.exe'}\n  condition: sel") == [5]
    assert fires("  sel: {ParentImage|endswith: '\\cmd.exe'}\n  condition: sel") == [5]

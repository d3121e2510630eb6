"""EVTX files written from scratch, for events the attack samples lack.

Real logs of Windows Defender, Microsoft Antimalware and other providers name their
EventData with spaces (`New Value`, `Threat Name`, `Process Name`…). No such log with the
events Sigma rules look for (an exclusion added, an AMSI or ASR detection) is among the
samples, so tests write them here: a real EVTX file header and chunk header (checksums
included), and records whose binary XML is a plain element tree — no templates, each name
inline, typed values for EventID, Level, EventRecordID and SystemTime as Windows writes
them. The `evtx` crate reads them like any other file, so they go through the real parser.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from casescope.parse.evtx_layout import (
    CHUNK_HEADER_SIZE,
    CHUNK_MAGIC,
    CHUNK_SIZE,
    FILE_HEADER_SIZE,
    FILE_MAGIC,
)

DEFENDER = "Microsoft-Windows-Windows Defender"
DEFENDER_CHANNEL = "Microsoft-Windows-Windows Defender/Operational"
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
# binary XML tokens and value types (MS-EVEN6 / libevtx's format notes)
_OPEN, _OPEN_ATTRS, _CLOSE_START, _CLOSE_EMPTY, _END = 0x01, 0x41, 0x02, 0x03, 0x04
_VALUE, _ATTR, _ATTR_MORE, _FRAGMENT, _EOF = 0x05, 0x06, 0x46, 0x0F, 0x00
STRING, UINT8, UINT16, UINT64, FILETIME = 0x01, 0x04, 0x06, 0x0A, 0x11

Typed = tuple[int, bytes]
Content = str | Typed | Sequence["Element"] | None


@dataclass(frozen=True)
class Element:
    tag: str
    attributes: Sequence[tuple[str, str | Typed]] = ()
    content: Content = None


@dataclass(frozen=True)
class CraftedEvent:
    provider: str
    channel: str
    event_id: int
    data: Mapping[str, str]
    computer: str = "WS01.corp.example"
    time: datetime = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    user_data: Element | None = None  # instead of EventData, when given
    extra: Mapping[str, str] = field(default_factory=dict)  # more System children (text)


class _Writer:
    """Binary XML at a known offset in its chunk: inline names point at themselves."""

    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.out = bytearray()

    def name(self, text: str) -> None:
        where = self.offset + len(self.out) + 4
        encoded = text.encode("utf-16-le")
        self.out += struct.pack("<IIHH", where, 0, 0, len(text)) + encoded + b"\0\0"

    def value(self, value: str | Typed) -> None:
        if isinstance(value, str):
            self.out += bytes((_VALUE, STRING)) + struct.pack("<H", len(value))
            self.out += value.encode("utf-16-le")
        else:
            self.out += bytes((_VALUE, value[0])) + value[1]

    def element(self, element: Element) -> None:
        self.out.append(_OPEN_ATTRS if element.attributes else _OPEN)
        size_at = len(self.out)
        self.out += b"\0\0\0\0"
        self.name(element.tag)
        if element.attributes:
            self._attributes(element.attributes)
        content = element.content
        if content is None:
            self.out.append(_CLOSE_EMPTY)
        else:
            self.out.append(_CLOSE_START)
            if isinstance(content, str | tuple):
                self.value(content)
            else:
                for child in content:
                    self.element(child)
            self.out.append(_END)
        struct.pack_into("<I", self.out, size_at, len(self.out) - size_at - 4)

    def _attributes(self, attributes: Sequence[tuple[str, str | Typed]]) -> None:
        size_at = len(self.out)
        self.out += b"\0\0\0\0"
        for number, (name, value) in enumerate(attributes, 1):
            self.out.append(_ATTR if number == len(attributes) else _ATTR_MORE)
            self.name(name)
            self.value(value)
        struct.pack_into("<I", self.out, size_at, len(self.out) - size_at - 4)


def _filetime(moment: datetime) -> bytes:
    delta = moment - _FILETIME_EPOCH
    ticks = (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10
    return struct.pack("<Q", ticks)


def _event_element(event: CraftedEvent, record_id: int) -> Element:
    system = [
        Element("Provider", [("Name", event.provider)]),
        Element("EventID", content=(UINT16, struct.pack("<H", event.event_id))),
        Element("Level", content=(UINT8, b"\x04")),
        Element("TimeCreated", [("SystemTime", (FILETIME, _filetime(event.time)))]),
        Element("EventRecordID", content=(UINT64, struct.pack("<Q", record_id))),
        Element("Channel", content=event.channel),
        Element("Computer", content=event.computer),
        *(Element(tag, content=text) for tag, text in event.extra.items()),
    ]
    body = event.user_data
    if body is None:
        data = [Element("Data", [("Name", k)], v) for k, v in event.data.items()]
        body = Element("EventData", content=data)
    xmlns = ("xmlns", "http://schemas.microsoft.com/win/2004/08/events/event")
    return Element("Event", [xmlns], [Element("System", content=system), body])


def _record(offset: int, record_id: int, event: CraftedEvent) -> bytes:
    writer = _Writer(offset + 24)
    writer.out += bytes((_FRAGMENT, 1, 1, 0))
    writer.element(_event_element(event, record_id))
    writer.out.append(_EOF)
    size = 24 + len(writer.out) + 4
    head = struct.pack("<4sIQQ", b"**\0\0", size, record_id, 0)
    return head + bytes(writer.out) + struct.pack("<I", size)


def _chunk(events: Sequence[CraftedEvent], first_id: int) -> bytes:
    records = bytearray()
    last = CHUNK_HEADER_SIZE
    for number, event in enumerate(events):
        last = CHUNK_HEADER_SIZE + len(records)
        records += _record(last, first_id + number, event)
    free = CHUNK_HEADER_SIZE + len(records)
    if free > CHUNK_SIZE:
        raise ValueError("too many or too large events for one chunk")
    header = bytearray(CHUNK_HEADER_SIZE)
    header[:8] = CHUNK_MAGIC
    last_id = first_id + len(events) - 1
    struct.pack_into("<QQQQIII", header, 8, first_id, last_id, first_id, last_id, 128, last, free)
    struct.pack_into("<I", header, 52, zlib.crc32(records))
    struct.pack_into("<I", header, 124, zlib.crc32(header[128:], zlib.crc32(header[:120])))
    chunk = bytes(header) + bytes(records)
    return chunk + bytes(CHUNK_SIZE - len(chunk))


def write_evtx(path: Path, events: Sequence[CraftedEvent]) -> Path:
    """A one-chunk EVTX file holding `events` (record ids from 1)."""
    header = bytearray(FILE_HEADER_SIZE)
    header[:8] = FILE_MAGIC
    struct.pack_into("<QQQIHHHH", header, 8, 0, 0, len(events) + 1, 128, 1, 3, 4096, 1)
    struct.pack_into("<I", header, 124, zlib.crc32(header[:120]))
    path.write_bytes(bytes(header) + _chunk(events, 1))
    return path


POWERSHELL = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
EXCLUSION_KEY = r"HKLM\SOFTWARE\Microsoft\Windows Defender\Exclusions\Paths\C:\Users\Public"


def _defender(event_id: int, data: Mapping[str, str]) -> CraftedEvent:
    return CraftedEvent(DEFENDER, DEFENDER_CHANNEL, event_id, data)


def _detection(source: str, process: str, provider: str = DEFENDER) -> dict[str, str]:
    """EventData of a malware detection (1116) as Defender and Antimalware write it."""
    return {
        "Product Name": "Microsoft Defender Antivirus",
        "Product Version": "4.18.24030.9",
        "Detection ID": "{2C1A4E38-74F3-4E8B-9D0B-3B6B4A1B6C11}",
        "Threat ID": "2147814523",
        "Threat Name": "HackTool:Win32/Mimikatz!pz",
        "Severity ID": "5",
        "Severity Name": "Severe",
        "Category ID": "34",
        "Category Name": "Tool",
        "Source ID": "3" if source == "Real-Time Protection" else "11",
        "Source Name": source,
        "Process Name": process,
        "Detection User": "CORP\\alice",
        "Path": "file:_C:\\Users\\alice\\Downloads\\mimikatz.exe",
        "Action Name": "Not Applicable",
    }


def _asr_block(process: str) -> CraftedEvent:
    """An attack surface reduction block (1121) of `process` opening LSASS."""
    return _defender(
        1121,
        {
            "Product Name": "Microsoft Defender Antivirus",
            "Product Version": "4.18.24030.9",
            "ID": "9E6C4E1F-7D60-472F-BA1A-A39EF669E4B2",
            "Detection Time": "2024-05-01T10:00:00.000Z",
            "User": "CORP\\alice",
            "Path": r"C:\Windows\System32\lsass.exe",
            "Process Name": process,
            "Target Commandline": "",
            "Parent Commandline": "",
            "Security intelligence Version": "1.409.1.0",
            "Engine Version": "1.1.24030.4",
        },
    )


def _feature_failure(feature: str, reason: str) -> CraftedEvent:
    """Real-time protection failed (3002): which feature, and why (message ids)."""
    return _defender(
        3002,
        {
            "Product Name": "Microsoft Defender Antivirus",
            "Product Version": "4.18.24030.9",
            "Feature Name": feature,
            "Reason": reason,
            "Error Code": "0x80004005",
            "Error Description": "Unspecified error",
            "Feature ID": "2",
        },
    )


#: Defender's Operational log as Windows writes it (data names with spaces).
DEFENDER_EVENTS: tuple[CraftedEvent, ...] = (
    _defender(
        5007,
        {
            "Product Name": "Microsoft Defender Antivirus",
            "Product Version": "4.18.24030.9",
            "Old Value": "",
            "New Value": f"{EXCLUSION_KEY} = 0x0",
        },
    ),
    _defender(
        1116, _detection("AMSI", r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe")
    ),
    _asr_block(r"C:\Users\alice\AppData\Local\Temp\dumper.exe"),
    _asr_block(r"C:\Windows\System32\svchost.exe"),  # a benign caller the rule filters out
    _feature_failure("%%886", "%%892"),  # Network Inspection lacking updates: filtered out
    _feature_failure("%%845", "%%858"),  # behaviour monitoring stopped: reported
)

#: System Center Endpoint Protection / Security Essentials: the same names, System log.
ANTIMALWARE_EVENTS: tuple[CraftedEvent, ...] = (
    CraftedEvent(
        "Microsoft Antimalware",
        "System",
        1116,
        _detection("Real-Time Protection", r"C:\Windows\explorer.exe"),
    ),
)

CRAFTED: dict[str, Callable[[], tuple[CraftedEvent, ...]]] = {
    "defender-operational.evtx": lambda: DEFENDER_EVENTS,
    "antimalware-system.evtx": lambda: ANTIMALWARE_EVENTS,
}


def write_all(folder: Path) -> list[Path]:
    """Every crafted file into `folder`; their paths, sorted."""
    folder.mkdir(parents=True, exist_ok=True)
    return sorted(write_evtx(folder / name, events()) for name, events in CRAFTED.items())

"""Process records from event rows: which events create, end or name a process, and what
they say of it (Sysmon 1/5 and other Sysmon events, Security 4688/4689 and events with a
ProcessId and ProcessName). Pure functions over the rows the store returns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from casescope.services.process_graph import (
    ProcessEnd,
    ProcessRecord,
    Source,
    norm_guid,
    parse_pid,
)
from casescope.store.process_events import SECURITY_PROVIDER, SYSMON_PROVIDER
from casescope.store.summary import SECURITY, SYSMON


def source_of(channel: str, provider: str) -> Source | None:
    if channel == SYSMON or provider == SYSMON_PROVIDER:
        return Source.SYSMON
    if channel == SECURITY or provider == SECURITY_PROVIDER:
        return Source.SECURITY
    return None


def _text(fields: Mapping[str, str], name: str) -> str:
    """A field's value; "" for the "-" Windows writes for "none"."""
    value = fields.get(name, "")
    return "" if value == "-" else value


def _user(fields: Mapping[str, str], prefix: str) -> str:
    name = fields.get(f"{prefix}UserName", "")
    domain = fields.get(f"{prefix}DomainName", "")
    return f"{domain}\\{name}" if domain and name and domain != "-" else name


def creation_record(row: Mapping[str, object]) -> ProcessRecord | None:
    """The process a Sysmon 1 or Security 4688 event created; None for any other event."""
    fields: Mapping[str, str] = row.get("fields") or {}  # type: ignore[assignment]
    source = source_of(str(row.get("channel", "")), str(row.get("provider", "")))
    event_id = row.get("event_id")
    ref = (int(row["file_id"]), int(row["seq"]))  # type: ignore[call-overload]
    ts = as_datetime(row.get("ts"))
    computer = str(row.get("computer", ""))
    if source is Source.SYSMON and event_id == 1:
        return ProcessRecord(
            ref,
            ts,
            computer,
            source,
            pid=parse_pid(fields.get("ProcessId")),
            guid=norm_guid(fields.get("ProcessGuid")),
            parent_pid=parse_pid(fields.get("ParentProcessId")),
            parent_guid=norm_guid(fields.get("ParentProcessGuid")),
            image=_text(fields, "Image"),
            command_line=_text(fields, "CommandLine"),
            user=_text(fields, "User"),
            logon_id=_text(fields, "LogonId"),
            parent_image=_text(fields, "ParentImage"),
            parent_command_line=_text(fields, "ParentCommandLine"),
        )
    if source is Source.SECURITY and event_id == 4688:
        target = fields.get("TargetUserName", "")
        return ProcessRecord(
            ref,
            ts,
            computer,
            source,
            pid=parse_pid(fields.get("NewProcessId")),
            parent_pid=parse_pid(fields.get("ProcessId")),
            image=_text(fields, "NewProcessName"),
            command_line=_text(fields, "CommandLine"),
            user=_user(fields, "Target") if target not in ("", "-") else _user(fields, "Subject"),
            logon_id=_text(fields, "TargetLogonId")
            if target not in ("", "-")
            else _text(fields, "SubjectLogonId"),
            parent_image=_text(fields, "ParentProcessName"),
        )
    return None


def end_record(row: Mapping[str, object]) -> ProcessEnd | None:
    """The exit a Sysmon 5 or Security 4689 event records; None for any other event."""
    fields: Mapping[str, str] = row.get("fields") or {}  # type: ignore[assignment]
    source = source_of(str(row.get("channel", "")), str(row.get("provider", "")))
    ts = as_datetime(row.get("ts"))
    computer = str(row.get("computer", ""))
    if ts is None:
        return None
    if source is Source.SYSMON and row.get("event_id") == 5:
        guid = norm_guid(fields.get("ProcessGuid"))
        return ProcessEnd(ts, computer, parse_pid(fields.get("ProcessId")), guid)
    if source is Source.SECURITY and row.get("event_id") == 4689:
        return ProcessEnd(ts, computer, parse_pid(fields.get("ProcessId")))
    return None


#: Where a Sysmon event that is not a creation names its process: the acting process's GUID,
#: id and image fields (Sysmon 8 and 10 name the source process; both spellings of GUID).
_ACTOR_FIELDS = (
    ("ProcessGuid", "ProcessId", "Image"),
    ("SourceProcessGuid", "SourceProcessId", "SourceImage"),
    ("SourceProcessGUID", "SourceProcessId", "SourceImage"),
)


def actor_record(row: Mapping[str, object]) -> ProcessRecord | None:
    """The process that did what an event records, as far as the event says: a Sysmon event
    with a ProcessGuid (or SourceProcessGuid), a Security event with a ProcessId and
    ProcessName. None for an event that names no process."""
    fields: Mapping[str, str] = row.get("fields") or {}  # type: ignore[assignment]
    source = source_of(str(row.get("channel", "")), str(row.get("provider", "")))
    computer = str(row.get("computer", ""))
    seen = (int(row["file_id"]), int(row["seq"]))  # type: ignore[call-overload]
    if source is Source.SYSMON:
        for guid_field, pid_field, image_field in _ACTOR_FIELDS:
            guid = norm_guid(fields.get(guid_field))
            if guid:
                pid = parse_pid(fields.get(pid_field))
                image = _text(fields, image_field)
                return ProcessRecord(
                    None,
                    None,
                    computer,
                    source,
                    pid,
                    guid,
                    image=image,
                    user=_text(fields, "User"),
                    seen_in=seen,
                )
        return None
    if source is Source.SECURITY and _text(fields, "ProcessName") not in ("", "-"):
        pid = parse_pid(fields.get("ProcessId"))
        if pid is not None:
            return ProcessRecord(
                None,
                None,
                computer,
                source,
                pid,
                image=_text(fields, "ProcessName"),
                user=_user(fields, "Subject"),
                logon_id=_text(fields, "SubjectLogonId"),
                seen_in=seen,
            )
    return None


def as_datetime(value: object) -> datetime | None:
    """An index time (`2024-03-01 10:00:00.123456`, UTC, naive) as a naive datetime."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    text = str(value or "").replace("T", " ").rstrip("Z")
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def records_from_rows(
    rows: Iterable[Mapping[str, object]],
) -> tuple[list[ProcessRecord], list[ProcessEnd]]:
    """The creations and exits among store rows (other rows are left out)."""
    starts: list[ProcessRecord] = []
    ends: list[ProcessEnd] = []
    for row in rows:
        if (record := creation_record(row)) is not None:
            starts.append(record)
        elif (end := end_record(row)) is not None:
            ends.append(end)
    return starts, ends

"""The SQL behind process trees, process activity and logon sessions.

Every lookup is by values the events carry (process GUIDs, process ids, logon ids) on one
computer. Each value is also a whole word of `search_text`, so every query ANDs a
`hasAnyTokens` prefilter that the text index answers: only the parts of the index holding one
of the values are read, not every event's `fields` map. One call over all the words, not an
OR of a `hasToken` per word: a tree level of 300 processes made ~900 terms, each evaluated
on every row read (`web/test_workbench.py`, the tree of ten thousand children: 13–16 s to
2.7 s). Values reach SQL only as parameters.

Rows come back slim: the key and core columns and only the event fields that process and
session records use (`PROCESS_FIELDS`), never `raw`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from casescope.store.events_table import DATABASE
from casescope.store.query_sql import is_token
from casescope.store.summary import SECURITY, SYSMON
from casescope.store.where import Where

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

SYSMON_PROVIDER = "Microsoft-Windows-Sysmon"
SECURITY_PROVIDER = "Microsoft-Windows-Security-Auditing"
#: Rows one lookup returns at most (a tree level, a parent's candidates): a process with
#: 10,000 children costs one query of slim rows, never an unbounded one.
FETCH_LIMIT = 20_000
TIME_TYPE = "DateTime64(6, 'UTC')"

#: The event fields process and session records read (everything else stays in the index).
PROCESS_FIELDS = (
    "ProcessGuid",
    "ProcessId",
    "Image",
    "CommandLine",
    "User",
    "LogonId",
    "ParentProcessGuid",
    "ParentProcessId",
    "ParentImage",
    "ParentCommandLine",
    "SourceProcessGuid",
    "SourceProcessGUID",
    "SourceProcessId",
    "SourceImage",
    "NewProcessId",
    "NewProcessName",
    "ProcessName",
    "ParentProcessName",
    "SubjectUserName",
    "SubjectDomainName",
    "SubjectLogonId",
    "TargetUserName",
    "TargetDomainName",
    "TargetLogonId",
    "LogonType",
    "IpAddress",
    "IpPort",
    "WorkstationName",
    "LogonProcessName",
    "AuthenticationPackageName",
    "LogonGuid",
    "ElevatedToken",
)
_SELECT = (
    "ts, file_id, seq, event_id, channel, provider, computer, user_name, "
    "mapFilter((k, v) -> has({pe_keys:Array(String)}, k), fields) AS slim_fields"
)
_IS_SYSMON = f"(channel = '{SYSMON}' OR provider = '{SYSMON_PROVIDER}')"
_IS_SECURITY = f"(channel = '{SECURITY}' OR provider = '{SECURITY_PROVIDER}')"
_TOKEN = re.compile(r"[0-9A-Za-z]+")


def _guid(name: str) -> str:
    return f"upperUTF8(trim(BOTH '{{}}' FROM fields['{name}']))"


def _pid(name: str) -> str:
    return f"lowerUTF8(fields['{name}'])"


class Relation(StrEnum):
    """What a process lookup asks for, given some processes' GUIDs and ids."""

    #: The creation and exit events of processes with these GUIDs / ids.
    INSTANCES = "instances"
    #: The creation events of their children (ParentProcessGuid / creator's id).
    CHILDREN = "children"


_GUIDS = "{pe_guids:Array(String)}"
_PIDS = "{pe_pids:Array(String)}"
#: The SQL of each relation: GUIDs in `{pe_guids}`, ids (decimal and hex text) in `{pe_pids}`.
_RELATION_SQL = {
    Relation.INSTANCES: (
        f"({_IS_SYSMON} AND event_id IN (1, 5) AND ({_guid('ProcessGuid')} IN {_GUIDS}"
        f" OR {_pid('ProcessId')} IN {_PIDS}))"
        f" OR ({_IS_SECURITY} AND event_id = 4688 AND {_pid('NewProcessId')} IN {_PIDS})"
        f" OR ({_IS_SECURITY} AND event_id = 4689 AND {_pid('ProcessId')} IN {_PIDS})"
    ),
    Relation.CHILDREN: (
        f"({_IS_SYSMON} AND event_id = 1 AND ({_guid('ParentProcessGuid')} IN {_GUIDS}"
        f" OR {_pid('ParentProcessId')} IN {_PIDS}))"
        f" OR ({_IS_SECURITY} AND event_id = 4688 AND {_pid('ProcessId')} IN {_PIDS})"
    ),
}


@dataclass(frozen=True)
class ProcessKeys:
    """Processes on one computer, by GUID (upper case, no braces) and id."""

    computer: str
    guids: frozenset[str] = frozenset()
    pids: frozenset[int] = frozenset()

    def pid_texts(self) -> list[str]:
        """Each id as Sysmon (decimal) and Security (hex, `0x1a4`) write it."""
        return sorted({t for p in self.pids for t in (str(p), f"0x{p:x}")})

    def tokens(self) -> list[str]:
        """The whole words of `search_text` that any event naming one of them holds."""
        words = {str(p) for p in self.pids} | {f"0x{p:x}" for p in self.pids}
        for guid in self.guids:
            parts = _TOKEN.findall(guid.lower())
            if parts:
                words.add(max(parts, key=len))
        return sorted(w for w in words if is_token(w))


@dataclass(frozen=True)
class TimeWindow:
    """`since` inclusive, `until` inclusive; None leaves that side open."""

    since: datetime | None = None
    until: datetime | None = None


def _time_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _slim(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with their slim fields under `fields` (aliased apart in SQL, so that WHERE reads
    the whole `fields` map, not the slim one)."""
    for row in rows:
        row["fields"] = row.pop("slim_fields")
    return rows


def _window_sql(window: TimeWindow, params: dict[str, object]) -> str:
    clauses = []
    if window.since is not None:
        clauses.append(f"ts >= {{pe_since:{TIME_TYPE}}}")
        params["pe_since"] = _time_text(window.since)
    if window.until is not None:
        clauses.append(f"ts <= {{pe_until:{TIME_TYPE}}}")
        params["pe_until"] = _time_text(window.until)
    return " AND ".join(clauses) or "1"


def _prefilter(words: Iterable[str], params: dict[str, object]) -> str:
    """`hasAnyTokens` of the words (the text index skips parts holding none)."""
    tokens = sorted({w.lower() for w in words if is_token(w)})
    if not tokens:
        return "1"
    params["pe_tokens"] = tokens
    return "hasAnyTokens(search_text, {pe_tokens:Array(String)})"


def process_rows(
    index: EventIndex,
    case_id: int,
    keys: ProcessKeys,
    relations: tuple[Relation, ...],
    window: TimeWindow = TimeWindow(),
    *,
    newest_first: bool = False,
    limit: int = FETCH_LIMIT,
) -> list[dict[str, Any]]:
    """Slim rows of the events in any of `relations` to `keys`, in time order (or newest
    first)."""
    if not keys.guids and not keys.pids:
        return []
    params: dict[str, object] = {
        "pe_case": case_id,
        "pe_computer": keys.computer,
        "pe_keys": list(PROCESS_FIELDS),
        "pe_guids": sorted(keys.guids),
        "pe_pids": keys.pid_texts(),
        "pe_lim": max(1, min(limit, FETCH_LIMIT)),
    }
    order = "DESC" if newest_first else "ASC"
    related = " OR ".join(f"({_RELATION_SQL[r]})" for r in relations)
    sql = (
        f"SELECT {_SELECT} FROM {DATABASE}.events WHERE case_id = {{pe_case:UInt32}} "
        f"AND computer = {{pe_computer:String}} AND {_window_sql(window, params)} "
        f"AND {_prefilter(keys.tokens(), params)} AND ({related}) "
        f"ORDER BY ts {order}, file_id {order}, seq {order} LIMIT {{pe_lim:UInt64}}"
    )
    return _slim(index.query_rows(sql, params))


def activity_where(case_id: int, keys: ProcessKeys, window: TimeWindow) -> Where:
    """WHERE of the events a process did in `window`: Sysmon events with its ProcessGuid
    (or, Sysmon 8 and 10, its SourceProcessGuid), Security events with its ProcessId."""
    params: dict[str, object] = {
        "case_id": case_id,
        "pa_computer": keys.computer,
        "pa_guids": sorted(keys.guids),
        "pa_pids": keys.pid_texts(),
    }
    did = []
    if keys.guids:
        guids = " OR ".join(
            f"{_guid(f)} IN {{pa_guids:Array(String)}}"
            for f in ("ProcessGuid", "SourceProcessGuid", "SourceProcessGUID")
        )
        did.append(f"({_IS_SYSMON} AND ({guids}))")
    if keys.pids:
        did.append(f"({_IS_SECURITY} AND {_pid('ProcessId')} IN {{pa_pids:Array(String)}})")
    did_sql = " OR ".join(did) or "0"
    sql = (
        "case_id = {case_id:UInt32} AND computer = {pa_computer:String} "
        f"AND {_window_sql(window, params)} AND {_prefilter(keys.tokens(), params)} "
        f"AND ({did_sql})"
    )
    return Where(sql, params)


# ---------------------------------------------------------------- logon sessions

#: Fields that name a logon session (Security: the account's or the subject's; Sysmon).
LOGON_FIELDS = ("TargetLogonId", "SubjectLogonId", "LogonId")


def session_where(case_id: int, computer: str, logon_id: str, window: TimeWindow) -> Where:
    """WHERE of the events of logon session `logon_id` (hex, lower case) on `computer`."""
    params: dict[str, object] = {"case_id": case_id, "ls_computer": computer, "ls_id": logon_id}
    named = " OR ".join(f"lowerUTF8(fields['{f}']) = {{ls_id:String}}" for f in LOGON_FIELDS)
    sql = (
        "case_id = {case_id:UInt32} AND computer = {ls_computer:String} "
        f"AND {_window_sql(window, params)} AND {_prefilter([logon_id], params)} AND ({named})"
    )
    return Where(sql, params)


def session_marks(
    index: EventIndex,
    case_id: int,
    logon: tuple[str, str],
    window: TimeWindow = TimeWindow(),
    *,
    newest_first: bool = False,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """The logons (4624), logoffs (4634, 4647) and special logons (4672) of the session
    `logon` = (computer, logon id) in `window`, in time order or newest first."""
    computer, logon_id = logon
    params: dict[str, object] = {
        "case_id": case_id,
        "ls_computer": computer,
        "ls_id": logon_id,
        "pe_keys": list(PROCESS_FIELDS),
        "ls_lim": max(1, min(limit, FETCH_LIMIT)),
    }
    order = "DESC" if newest_first else "ASC"
    sql = (
        f"SELECT {_SELECT} FROM {DATABASE}.events WHERE case_id = {{case_id:UInt32}} "
        f"AND computer = {{ls_computer:String}} AND {_window_sql(window, params)} "
        f"AND {_prefilter([logon_id], params)} AND {_IS_SECURITY} AND ("
        "(event_id IN (4624, 4634, 4647) AND lowerUTF8(fields['TargetLogonId']) = {ls_id:String})"
        " OR (event_id = 4672 AND lowerUTF8(fields['SubjectLogonId']) = {ls_id:String})) "
        f"ORDER BY ts {order}, file_id {order}, seq {order} LIMIT {{ls_lim:UInt64}}"
    )
    return _slim(index.query_rows(sql, params))


def window_where(case_id: int, computer: str, window: TimeWindow) -> Where:
    """WHERE of every event on `computer` in `window` (the context around an event)."""
    params: dict[str, object] = {"case_id": case_id, "cw_computer": computer}
    sql = "case_id = {case_id:UInt32} AND computer = {cw_computer:String} AND " + _window_sql(
        window, params
    )
    return Where(sql, params)

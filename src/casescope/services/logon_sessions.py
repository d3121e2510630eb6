"""Logon sessions: from a logon id on a computer, the session's start, end, source, user and
type, and the window its events are read in.

A session opens with a Security 4624 (TargetLogonId) and closes with a 4634 or 4647; 4672
(special privileges, SubjectLogonId) marks it elevated. Events belong to it when one of
their TargetLogonId, SubjectLogonId or (Sysmon) LogonId is its id. Windows reuses ids after
a reboot, so the session is the one open at the time asked about (`at`): the latest logon at
or before it, ended by the first logoff after that and before the next logon of the id.
Windows logs a 4672 a moment before its 4624, so the window reaches `GRACE` either side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from casescope.errors import CasescopeError
from casescope.services.process_records import as_datetime
from casescope.store.process_events import TimeWindow, session_marks, session_where
from casescope.store.where import Where

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

GRACE = timedelta(seconds=5)
#: Logon and logoff events read either side of the time asked about.
MARKS = 50
LOGON_TYPES = {
    "0": "System",
    "2": "Interactive",
    "3": "Network",
    "4": "Batch",
    "5": "Service",
    "7": "Unlock",
    "8": "NetworkCleartext",
    "9": "NewCredentials",
    "10": "RemoteInteractive",
    "11": "CachedInteractive",
    "12": "CachedRemoteInteractive",
    "13": "CachedUnlock",
}
#: Sessions of built-in accounts: no 4624 opens them, they last as long as the system.
WELL_KNOWN = {"0x3e7": "SYSTEM", "0x3e4": "NETWORK SERVICE", "0x3e5": "LOCAL SERVICE"}
_HEX = re.compile(r"0x[0-9a-f]{1,16}")
LOGON, LOGOFFS, SPECIAL = 4624, (4634, 4647), 4672


def normalise_logon_id(text: str) -> str:
    """A logon id as Windows writes it (`0x3c004`, lower case); CasescopeError otherwise."""
    value = text.strip().lower()
    if value.isdigit() and len(value) <= 20:
        value = f"0x{int(value):x}"
    if not _HEX.fullmatch(value) or int(value, 16) == 0:
        raise CasescopeError(f"not a logon id: {text[:40]!r} (hex such as 0x3e7, not 0)")
    return f"0x{int(value, 16):x}"


@dataclass(frozen=True)
class LogonSession:
    computer: str
    logon_id: str
    #: The 4624 that opened it and the 4634/4647 that closed it (rows; None: not logged).
    logon: dict[str, Any] | None
    logoff: dict[str, Any] | None
    elevated: bool
    window: TimeWindow

    def field(self, name: str) -> str:
        value = ((self.logon or {}).get("fields") or {}).get(name, "")
        return "" if value == "-" else str(value)

    @property
    def start(self) -> datetime | None:
        return as_datetime(self.logon["ts"]) if self.logon else None

    @property
    def end(self) -> datetime | None:
        return as_datetime(self.logoff["ts"]) if self.logoff else None

    @property
    def user(self) -> str:
        name, domain = self.field("TargetUserName"), self.field("TargetDomainName")
        return f"{domain}\\{name}" if domain and name else name or WELL_KNOWN.get(self.logon_id, "")

    @property
    def logon_type(self) -> str:
        kind = self.field("LogonType")
        return f"{kind} ({LOGON_TYPES[kind]})" if kind in LOGON_TYPES else kind


def _ref(row: dict[str, Any]) -> tuple[int, int]:
    return int(row["file_id"]), int(row["seq"])


def _ts(row: dict[str, Any]) -> datetime:
    return as_datetime(row.get("ts")) or datetime.min


def pick_session(
    before: list[dict[str, Any]], after: list[dict[str, Any]], at: datetime | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, bool]:
    """(logon, logoff, elevated) of the session open at `at` (None: the first one), from
    the id's marks up to `at` + GRACE (newest first) and from the logon (or `at`) on."""
    limit = at + GRACE if at else None
    logons = [r for r in before if r.get("event_id") == LOGON and limit and _ts(r) <= limit]
    logon = logons[0] if logons else None
    if logon is None and at is None:
        logon = next((r for r in after if r.get("event_id") == LOGON), None)
    since = _ts(logon) if logon else at
    logoff = None
    for row in after:
        stamp = _ts(row)
        if since is not None and stamp < since:
            continue
        if row.get("event_id") == LOGON and logon is not None and _ref(row) != _ref(logon):
            break  # the id was reused: a later session
        if row.get("event_id") in LOGOFFS:
            logoff = row
            break
    elevated = logon is not None and any(
        r.get("event_id") == SPECIAL and abs(_ts(r) - _ts(logon)) <= GRACE for r in before + after
    )
    return logon, logoff, elevated


def find_session(
    index: EventIndex, case_id: int, logon: tuple[str, str], at: datetime | None
) -> LogonSession:
    """The session `logon` = (computer, logon id, normalised) open at `at`."""
    before = (
        session_marks(
            index, case_id, logon, TimeWindow(until=at + GRACE), newest_first=True, limit=MARKS
        )
        if at
        else []
    )
    first, _, _ = pick_session(before, [], at) if at else (None, None, False)
    since = _ts(first) - GRACE if first else (at - GRACE if at else None)
    after = session_marks(index, case_id, logon, TimeWindow(since=since), limit=MARKS)
    opened, closed, elevated = pick_session(before, after, at)
    start = _ts(opened) - GRACE if opened else None
    end = _ts(closed) + GRACE if closed else None
    return LogonSession(logon[0], logon[1], opened, closed, elevated, TimeWindow(start, end))


def session_filter(case_id: int, session: LogonSession) -> Where:
    """WHERE of the session's events (page it with the search's keyset pages)."""
    return session_where(case_id, session.computer, session.logon_id, session.window)

"""Which session a logon id means at a time: reused ids, 4672 before 4624, missing marks."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from casescope.errors import CasescopeError
from casescope.services.logon_sessions import normalise_logon_id, pick_session

T0 = datetime(2024, 3, 1, 10)


def mark(seq: int, event_id: int, seconds: float) -> dict:
    ts = (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S.%f")
    return {"file_id": 1, "seq": seq, "event_id": event_id, "ts": ts, "fields": {}}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# one id used by two sessions: 10 s -> 20 s, then 100 s -> 200 s; a 4672 a moment before each
MARKS = [
    mark(1, 4672, 9), mark(2, 4624, 10), mark(3, 4634, 20),
    mark(4, 4672, 99), mark(5, 4624, 100), mark(6, 4647, 200),
]  # fmt: skip


def split(when: datetime | None) -> tuple[list, list]:
    if when is None:
        return [], MARKS
    before = [
        m for m in reversed(MARKS) if datetime.fromisoformat(m["ts"]) <= when + timedelta(seconds=5)
    ]
    return before, MARKS


def test_the_session_open_at_the_time_is_chosen() -> None:
    logon, logoff, elevated = pick_session(*split(at(150)), at(150))
    assert (logon["seq"], logoff["seq"], elevated) == (5, 6, True)
    logon, logoff, _ = pick_session(*split(at(15)), at(15))
    assert (logon["seq"], logoff["seq"]) == (2, 3)


def test_a_4672_logged_just_before_its_4624_opens_the_same_session() -> None:
    logon, logoff, elevated = pick_session(*split(at(99)), at(99))
    assert (logon["seq"], logoff["seq"], elevated) == (5, 6, True)


def test_without_a_time_the_first_session() -> None:
    logon, logoff, _ = pick_session([], MARKS, None)
    assert (logon["seq"], logoff["seq"]) == (2, 3)


def test_a_later_logon_of_the_id_ends_the_search_for_a_logoff() -> None:
    marks = [mark(1, 4624, 10), mark(2, 4624, 100), mark(3, 4634, 120)]
    logon, logoff, elevated = pick_session([marks[0]], marks, at(50))
    assert logon["seq"] == 1 and logoff is None and not elevated


def test_no_logon_logged() -> None:
    marks = [mark(1, 4634, 50)]
    logon, logoff, _ = pick_session([], marks, at(20))
    assert logon is None and logoff["seq"] == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0x3C004", "0x3c004"), (" 0x3e7 ", "0x3e7"), ("999", "0x3e7"), ("0x0003e7", "0x3e7")],
)
def test_logon_ids_normalise(text: str, expected: str) -> None:
    assert normalise_logon_id(text) == expected


@pytest.mark.parametrize("text", ["", "0x0", "0", "0xzz", "abc", "0x" + "f" * 17, "-1", "1e3"])
def test_bad_logon_ids_are_refused(text: str) -> None:
    with pytest.raises(CasescopeError, match="not a logon id"):
        normalise_logon_id(text)

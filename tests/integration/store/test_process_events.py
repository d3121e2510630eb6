"""Process and logon-session lookups against a real chDB index."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from casescope.parse.batch import BatchBuilder
from casescope.store import process_events as pe
from casescope.store.index import ChdbIndex
from casescope.store.process_events import ProcessKeys, Relation, TimeWindow, process_rows
from tests.integration.conftest import index_of

T0 = 1_714_557_600_000_000  # 2024-05-01T10:00:00Z in microseconds
SYSMON = ("Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon")
SECURITY = ("Security", "Microsoft-Windows-Security-Auditing")
PARENT = "365ABB72-AC28-5CB8-0000-0010F3F70700"
EVENTS = [  # (seconds, event_id, (channel, provider), computer, fields)
    (0, 1, SYSMON, "PC1", {"ProcessGuid": PARENT, "ProcessId": "1200"}),
    (5, 1, SYSMON, "PC1", {"ProcessGuid": "{AAAAAAAA-0000-0000-0000-000000000001}",
                           "ParentProcessGuid": "{" + PARENT.lower() + "}", "ProcessId": "7"}),
    (6, 1, SYSMON, "PC2", {"ProcessGuid": "B", "ParentProcessGuid": PARENT}),  # another host
    (7, 4688, SECURITY, "PC1", {"NewProcessId": "0x1bc", "ProcessId": "0x4B0"}),
    (8, 4689, SECURITY, "PC1", {"ProcessId": "0x1bc"}),
    (9, 5, SYSMON, "PC1", {"ProcessGuid": PARENT, "ProcessId": "1200"}),
    (20, 4672, SECURITY, "PC1", {"SubjectLogonId": "0x3c004"}),
    (21, 4624, SECURITY, "PC1", {"TargetLogonId": "0x3C004", "IpAddress": "10.0.0.1"}),
    (30, 4663, SECURITY, "PC1", {"SubjectLogonId": "0x3c004"}),
    (40, 4634, SECURITY, "PC1", {"TargetLogonId": "0x3c004"}),
]  # fmt: skip


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbIndex]:
    builder = BatchBuilder()
    for n, (seconds, event_id, (channel, provider), computer, fields) in enumerate(EVENTS):
        core = (T0 + seconds * 1_000_000, event_id, channel, provider, computer, n, 4, "", "")
        builder.add(core, fields, "{}")
    chdb_index = index_of(tmp_path_factory.mktemp("procs"), builder.flush())
    yield chdb_index
    chdb_index.close()


def seqs(rows: list[dict]) -> list[int]:
    return [int(r["seq"]) for r in rows]


def test_children_by_guid_any_case_or_braces_and_by_creator_id(index: ChdbIndex) -> None:
    keys = ProcessKeys("PC1", frozenset({PARENT}), frozenset({1200}))
    rows = process_rows(index, 1, keys, (Relation.CHILDREN,))
    assert seqs(rows) == [1, 3]  # Sysmon child (braces, lower case) and 4688 child (0x4B0)
    assert rows[0]["fields"]["ParentProcessGuid"] == "{" + PARENT.lower() + "}"
    assert "IpAddress" not in rows[0]["fields"]  # slim rows: only the process fields


def test_instances_and_exits_in_a_window_newest_first(index: ChdbIndex) -> None:
    keys = ProcessKeys("PC1", frozenset({PARENT}), frozenset({0x1BC, 1200}))
    rows = process_rows(index, 1, keys, (Relation.INSTANCES,))
    assert seqs(rows) == [0, 3, 4, 5]
    window = TimeWindow(until=datetime(2024, 5, 1, 10, 0, 7))
    newest = process_rows(index, 1, keys, (Relation.INSTANCES,), window, newest_first=True)
    assert seqs(newest) == [3, 0]


def test_lookups_read_the_whole_fields_map(
    index: ChdbIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The filter must not depend on which fields the rows bring back."""
    monkeypatch.setattr(pe, "PROCESS_FIELDS", ("Image",))
    keys = ProcessKeys("PC1", frozenset({PARENT}), frozenset())
    assert seqs(process_rows(index, 1, keys, (Relation.CHILDREN,))) == [1]
    marks = pe.session_marks(index, 1, ("PC1", "0x3c004"))
    assert seqs(marks) == [6, 7, 9]


def test_session_marks_and_events(index: ChdbIndex) -> None:
    marks = pe.session_marks(index, 1, ("PC1", "0x3c004"))
    assert [r["event_id"] for r in marks] == [4672, 4624, 4634]
    latest = pe.session_marks(index, 1, ("PC1", "0x3c004"), newest_first=True, limit=1)
    assert seqs(latest) == [9]
    where = pe.session_where(1, "PC1", "0x3c004", TimeWindow())
    sql = f"SELECT seq FROM casescope.events WHERE {where.sql} ORDER BY seq"
    rows = index.query_rows(sql, where.params)
    assert seqs(rows) == [6, 7, 8, 9]


def test_activity_by_guid_and_by_security_process_id(index: ChdbIndex) -> None:
    keys = ProcessKeys("PC1", frozenset({PARENT}), frozenset({0x4B0}))
    where = pe.activity_where(1, keys, TimeWindow())
    sql = f"SELECT seq FROM casescope.events WHERE {where.sql} ORDER BY seq"
    rows = index.query_rows(sql, where.params)
    assert seqs(rows) == [0, 3, 5]  # its creation and exit (Sysmon), the 4688 it made

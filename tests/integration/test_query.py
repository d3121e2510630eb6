"""The query language against a real chDB index: exact match sets, and no injection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casescope.parse.batch import BatchBuilder
from casescope.services.search import SearchRequest, search
from casescope.store.index import ChdbIndex
from casescope.store.query import QuerySyntaxError, compile_query
from tests.integration.conftest import index_of

T0 = 1_700_000_000_000_000  # 2023-11-14T22:13:20Z in microseconds

EVENTS = [  # (event_id, computer, user, fields)
    (4624, "DC1", "alice", {"LogonType": "3", "IpAddress": "10.1.1.1"}),
    (4624, "DC1", "bob", {"LogonType": "10", "IpAddress": "10.1.1.10"}),
    (
        4688,
        "WS1",
        "alice",
        {"NewProcessName": r"C:\Windows\System32\cmd.exe", "CommandLine": r"cmd.exe /c whoami"},
    ),
    (
        1,
        "WS2",
        "carol",
        {"Image": r"C:\Tools\mimikatz.exe", "CommandLine": "sekurlsa::logonpasswords"},
    ),
    (3, "WS2", "carol", {"DestinationHostname": "evil-site.com", "DestinationPort": "443"}),
    (3, "WS2", "carol", {"DestinationHostname": "notevil-site.com", "DestinationPort": "80"}),
    (4104, "WS3", "dave", {"ScriptBlockText": "Write-Host 'héllo wörld'"}),
    (4104, "WS3", "dave", {"ScriptBlockText": '\'; DROP TABLE events; -- "quoted"'}),
    (7045, "SRV", "", {"ServiceName": "PSEXESVC", "ImagePath": "%SystemRoot%\\PSEXESVC.exe"}),
    (4625, "DC1", "Administrator", {"LogonType": "3", "Status": "0xc000006d"}),
    (4688, "WS1", "eve", {"NewProcessName": "C:\\temp\\new\\run.exe", "Tab": "a\tb"}),
    (  # Defender's names have spaces; Sigma rules and analysts often write them without
        5007,
        "WS4",
        "",
        {
            "Old Value": "",
            "New Value": r"HKLM\...\Exclusions\Paths\C:\Temp = 0x0",
            "Feature Name": "%%886",
        },
    ),
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbIndex]:
    home = tmp_path_factory.mktemp("query")
    builder = BatchBuilder()
    for n, (event_id, computer, user, fields) in enumerate(EVENTS):
        core = (T0 + n * 60_000_000, event_id, "Security", "Prov", computer, n, 4, user, "")
        builder.add(core, fields, "{}")
    chdb_index = index_of(home, builder.flush())
    yield chdb_index
    chdb_index.close()


def matches(index: ChdbIndex, query: str, **kw: object) -> list[int]:
    rows, total = search(index, SearchRequest(case_id=1, query=query, limit=100, **kw))  # type: ignore[arg-type]
    assert total == len(rows)
    return sorted(int(r["seq"]) for r in rows)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", list(range(12))),
        (r'NewProcessName:"C:\temp\new\run.exe"', [10]),
        (r"C:\temp\new", [10]),
        ("EventID:4624", [0, 1]),
        ("eventid:4624 AND user:bob", [1]),
        ("EventID:4624 OR EventID:4625", [0, 1, 9]),
        ("NOT EventID:4624", [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
        ("-computer:dc1", [2, 3, 4, 5, 6, 7, 8, 10, 11]),
        ("mimikatz", [3]),
        ("MIMIKATZ", [3]),
        ('"sekurlsa::logonpasswords"', [3]),
        (r"C:\Windows\System32", [2]),
        (r'NewProcessName:"C:\Windows\System32\cmd.exe"', [2]),
        (r"NewProcessName:*\\cmd.exe", [2]),
        ("Image:*mimi*", [3]),
        ("user:ali*", [0, 2]),
        ("user:?ob", [1]),
        ("IpAddress:10.1.1.1", [0]),
        ("DestinationHostname:evil-site.com", [4]),
        ("EventID:[4600 TO 4700]", [0, 1, 2, 9, 10]),
        ("EventID:{4624 TO 4688]", [2, 9, 10]),
        ("EventID:>=4688", [2, 8, 10, 11]),
        ("DestinationPort:>100", [4]),
        ("_exists_:ScriptBlockText", [6, 7]),
        ("héllo", [6]),
        ('"WÖRLD"', [6]),
        ("(EventID:3 OR EventID:1) AND computer:ws2 AND NOT notevil", [3, 4]),
        ("DROP TABLE", [7]),
        ('"\'; DROP TABLE events; --"', [7]),
        ("%SystemRoot%", [8]),
        ("PSEXE*", [8]),
        ("ts:>=2023-11-14T22:20:20Z", [7, 8, 9, 10, 11]),
        ("ts:[2023-11-14T22:13:20 TO 2023-11-14T22:14:20Z]", [0, 1]),
        ("record_id:5", [5]),
        ("nothing_matches_this", []),
        ("NewValue:*Exclusions*", [11]),  # either spelling of a name with spaces
        ('"New Value":*Exclusions*', [11]),
        ("New_Value:*exclusions*", [11]),
        ("Feature_Name:%%886", [11]),
        ('"New Value":* AND _exists_:"Old Value"', [11]),
        ("_exists_:OldValue", [11]),
        ('"Old Value":""', [11]),
        ("newvalue:*Exclusions*", []),  # field names keep their case
        ('"Image":*mimi*', [3]),
    ],
)
def test_query_matches_exactly(index: ChdbIndex, query: str, expected: list[int]) -> None:
    assert matches(index, query) == expected


def test_time_window(index: ChdbIndex) -> None:
    from datetime import UTC, datetime

    start = datetime.fromtimestamp(T0 / 1e6 + 120, UTC)
    end = datetime.fromtimestamp(T0 / 1e6 + 300, UTC)
    assert matches(index, "", start=start, end=end) == [2, 3, 4]


@pytest.mark.parametrize(
    "query", ["(a", "a)", '"unclosed', "EventID:abc", "field:", "[1 TO 2", "ts:>notatime", "\x00"]
)
def test_syntax_errors_are_clear(query: str) -> None:
    with pytest.raises(QuerySyntaxError, match="column"):
        compile_query(query)


HOSTILE = st.text(alphabet=st.sampled_from(list("ab'\"\\{}:;-*?()[] %_\x00ORANDNOT")), max_size=30)


@settings(max_examples=200, deadline=None)
@given(HOSTILE)
def test_user_text_never_reaches_the_sql(query: str) -> None:
    try:
        compiled = compile_query(query)
    except QuerySyntaxError:
        return
    for value in compiled.params.values():
        if isinstance(value, str) and len(value) > 2 and value not in ("String", "Int64"):
            assert value not in compiled.sql.replace("search_text", "")


@settings(max_examples=60, deadline=None)
@given(HOSTILE)
def test_hostile_queries_execute_or_fail_cleanly(index: ChdbIndex, query: str) -> None:
    try:
        compile_query(query)
    except QuerySyntaxError:
        return
    matches(index, query)  # must run without a ClickHouse error

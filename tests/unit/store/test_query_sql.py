"""The query language against a real chDB table: exact match sets, SQL shape, no injection.

The table is created from the DDL in docs/architecture.md ("Event index table"), so the
language is checked against the documented schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from chdb import session as chdb_session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import REPO_ROOT

from casescope.store.index import _bind  # the same parameter binding the index uses
from casescope.store.query import CompiledQuery, QuerySyntaxError, compile_query

BASE = "2024-03-01 10:{minute:02d}:00.000000"
SECURITY = ("Security", "Microsoft-Windows-Security-Auditing")
SYSMON = ("Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon")
POWERSHELL = ("Microsoft-Windows-PowerShell/Operational", "Microsoft-Windows-PowerShell")
DROP = "'; DROP TABLE events; --"

# seq: (event_id, (channel, provider), computer, user_name, user_sid, fields)
EVENTS: dict[int, tuple[Any, ...]] = {
    0: (4624, SECURITY, "DC1", "alice", "", {"LogonType": "3", "IpAddress": "10.1.1.1"}),
    1: (4624, SECURITY, "DC1", "bob", "", {"LogonType": "10", "IpAddress": "10.1.1.10"}),
    2: (
        4688,
        SECURITY,
        "WS1.corp.local",
        "alice",
        "",
        {
            "NewProcessName": "C:\\Windows\\System32\\cmd.exe",
            "CommandLine": 'cmd.exe /c "whoami /all"',
            "ParentProcessName": "C:\\Windows\\explorer.exe",
        },
    ),
    3: (
        1,
        SYSMON,
        "WS2",
        "carol",
        "",
        {
            "Image": "C:\\Tools\\mimikatz.exe",
            "CommandLine": "mimikatz.exe sekurlsa::logonpasswords",
        },
    ),
    4: (
        3,
        SYSMON,
        "WS2",
        "carol",
        "",
        {"DestinationHostname": "evil-site.com", "DestinationPort": "443"},
    ),
    5: (
        3,
        SYSMON,
        "WS2",
        "carol",
        "",
        {"DestinationHostname": "notevil-site.com", "DestinationPort": "80"},
    ),
    6: (4104, POWERSHELL, "WS3", "dave", "", {"ScriptBlockText": "Write-Host 'héllo wörld'"}),
    7: (4104, POWERSHELL, "WS3", "dave", "", {"ScriptBlockText": f'{DROP} "quoted"'}),
    8: (
        7045,
        ("System", "Service Control Manager"),
        "SRV",
        "",
        "S-1-5-18",
        {"ServiceName": "PSEXESVC", "ImagePath": "%SystemRoot%\\PSEXESVC.exe"},
    ),
    9: (
        4625,
        SECURITY,
        "DC1",
        "Administrator",
        "S-1-5-21-1000-500",
        {"LogonType": "3", "Status": "0xc000006d", "IpAddress": "10.1.1.1"},
    ),
    10: (4688, SECURITY, "WS1", "eve", "", {"NewProcessName": "C:\\temp\\new\\run.exe"}),
    11: (
        None,
        ("", ""),
        "web01",
        "",
        "",
        {"http.method": "GET", "url": "http://evil-site.com/a_b%20c?x=1", "bytes": "1024.5"},
    ),
    12: (1102, SECURITY, "DC1", "", "", {"Note": "log cleared"}),  # no time: stored as the epoch
    13: (4663, SECURITY, "ПК-01", "Jürgen", "", {"Path": "C:\\Users\\Jürgen\\Desktop\\naïve.txt"}),
    14: (4663, SECURITY, "FS1", "eve", "", {"ObjectName": "\\\\fileserver\\share\\secret.docx"}),
    15: (
        4688,
        SECURITY,
        "WS4",
        "frank",
        "",
        {
            "CommandLine": "powershell -enc SQBFAFgA",
            "NewProcessName": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        },
    ),
    16: (
        4720,
        SECURITY,
        "DC1",
        "Admin_Backup",
        "",
        {"SamAccountName": "admin_backup", "Empty": ""},
    ),
    17: (4624, SECURITY, "DC2", "svc", "", {"LogonType": "5", "IpAddress": "-"}),
    18: (
        13,
        SYSMON,
        "WS2",
        "carol",
        "",
        {
            "Value": "100%_done",
            "TargetObject": "HKLM\\Software\\Classes\\CLSID\\{0AB12345-0000}\\InprocServer32",
        },
    ),
    19: (
        4688,
        SECURITY,
        "WS1",
        "alice",
        "",
        {"CommandLine": "cmd /c echo a*b?c", "TargetFilename": "report (final).pdf"},
    ),
}
ALL = sorted(EVENTS)


def _row(seq: int) -> dict[str, Any]:
    event_id, (channel, provider), computer, user, sid, fields = EVENTS[seq]
    return {
        "case_id": 1,
        "file_id": 1 if seq < 10 else 2,
        "seq": seq,
        "ts": "1970-01-01 00:00:00.000000" if seq == 12 else BASE.format(minute=seq),
        "event_id": event_id,
        "channel": channel,
        "provider": provider,
        "computer": computer,
        "record_id": None if seq == 11 else 1000 + seq,
        "level": {11: None, 17: 0}.get(seq, 4),
        "user_name": user,
        "user_sid": sid,
        "fields": fields,
        "raw": "{}",
    }


def _documented_ddl() -> str:
    doc = (REPO_ROOT / "docs" / "architecture.md").read_text()
    section = doc.split("## Event index table", 1)[1]
    match = re.search(r"```sql\n(CREATE TABLE events .*?)```", section, re.S)
    assert match, "docs/architecture.md no longer shows the events table DDL"
    return match.group(1)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[chdb_session.Session]:
    sess = chdb_session.Session(str(tmp_path_factory.mktemp("query_chdb")))
    sess.query("CREATE DATABASE IF NOT EXISTS q")
    sess.query("USE q")
    sess.query(_documented_ddl())
    rows = b"\n".join(orjson.dumps(_row(seq)) for seq in ALL).decode()
    sess.query(f"INSERT INTO events FORMAT JSONEachRow\n{rows}")
    yield sess
    sess.close()


def run(db: chdb_session.Session, compiled: CompiledQuery) -> list[int]:
    sql = (
        "SELECT seq FROM events WHERE case_id = {case_id:UInt32} AND ("
        + compiled.sql
        + ") ORDER BY seq"
    )
    params = _bind({"case_id": 1, **compiled.params})
    result = db.query(sql, "JSONEachRow", params=params).bytes()
    return [orjson.loads(line)["seq"] for line in result.splitlines() if line]


def matches(db: chdb_session.Session, query: str) -> list[int]:
    return run(db, compile_query(query))


def but(*excluded: int) -> list[int]:
    return [seq for seq in ALL if seq not in excluded]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ALL),
        ("mimikatz", [3]),
        ("MIMIKATZ", [3]),
        ("admin", [16]),  # a word is a whole token: not "Administrator"; "_" separates
        ("*admin*", [9, 16]),
        ('"10.1.1.1"', [0, 1, 9]),  # text with punctuation is a substring: also 10.1.1.10
        ("IpAddress:10.1.1.1", [0, 9]),  # a field value is the whole value
        ("IpAddress:10.1.1.1*", [0, 1, 9]),
        ("DestinationHostname:evil-site.com", [4]),
        ("evil-site.com", [4, 5, 11]),
        ("C:\\Windows\\System32", [2, 15]),
        ('NewProcessName:"C:\\Windows\\System32\\cmd.exe"', [2]),
        ("NewProcessName:C:\\Windows\\System32\\*", []),  # \* is a literal star ...
        ("NewProcessName:C:\\Windows\\System32\\\\*", [2, 15]),  # ... \\* a backslash, then any
        ("NewProcessName:*\\\\cmd.exe", [2]),
        ("Image:*\\mimikatz.exe", [3]),
        ('ObjectName:"\\\\\\\\fileserver\\share\\secret.docx"', [14]),
        ("sekurlsa::logonpasswords", [3]),
        ("user:ali*", [0, 2, 19]),
        ("user:?ob", [1]),
        ("user:JÜRGEN", [13]),
        ("computer:пк-01", [13]),
        ("naïve", [13]),
        ("héllo", [6]),
        ('"WÖRLD"', [6]),
        (f'"{DROP}"', [7]),
        ("DROP TABLE", [7]),
        ("%SystemRoot%", [8]),
        ("ImagePath:%systemroot%*", [8]),
        ("Value:100%*", [18]),
        ("Value:1_0*", []),  # _ and % in a value are literal characters, not LIKE wildcards
        ("PSEXE*", [8]),
        ("TargetObject:*\\{0AB12345*", [18]),
        ("CommandLine:*-enc*", [15]),
        ('"-enc"', [15]),
        ("-enc", but(15)),
        ('CommandLine:"cmd /c echo a*b?c"', [19]),
        ("CommandLine:*a\\*b\\?c", [19]),
        ("CommandLine:*a\\*bb*", []),
        ("report\\ \\(final\\).pdf", [19]),
        ("EventID:4624", [0, 1, 17]),
        ("event_id:[4600 TO 4700]", [0, 1, 2, 9, 10, 13, 14, 15, 17, 19]),
        ("eventid:{4624 TO 4688]", [2, 9, 10, 13, 14, 15, 19]),
        ("EventID:>=4688", [2, 8, 10, 15, 16, 19]),
        ("EventID:46*", [0, 1, 2, 9, 10, 13, 14, 15, 17, 19]),
        ("NOT EventID:4624", but(0, 1, 17)),  # includes the event without an EventID
        ("NOT _exists_:EventID", [11]),
        ("DestinationPort:>100", [4]),
        ("DestinationPort:<100", [5]),  # events without the field never compare
        ("NOT DestinationPort:<100", but(5)),
        ("bytes:>1000", [11]),
        ("DestinationHostname:[a TO f]", [4]),
        ("_exists_:ScriptBlockText", [6, 7]),
        ('Empty:""', [16]),
        ("Empty:*", [16]),
        ("http.method:get", [11]),
        ("http://evil-site.com", [11]),
        ('url:"http://evil-site.com/a_b%20c?x=1"', [11]),
        ("ts:>=2024-03-01T10:15:00Z", [15, 16, 17, 18, 19]),
        ("ts:[2024-03-01T10:00 TO 2024-03-01T10:02]", [0, 1, 2]),  # a minute is inclusive
        ("ts:[2024-03-01T11:00+01:00 TO 2024-03-01T10:01:00Z}", [0]),
        ("ts:{* TO 2024-03-01T10:01:00Z}", [0, 12]),
        ("ts:2024-03-01", but(12)),
        ("ts:<2000", [12]),
        ("@timestamp:>2024-03-01T10:18", [19]),
        ("level:0", [17]),
        ("level:[1 TO *]", but(11, 17)),
        ("record_id:1005", [5]),
        ("file_id:2 AND seq:<12", [10, 11]),
        ("provider:microsoft-windows-sysmon", [3, 4, 5, 18]),
        ("Channel:*sysmon*", [3, 4, 5, 18]),
        ("host:dc1 OR hostname:DC2", [0, 1, 9, 12, 16, 17]),
        ("sid:S-1-5-18", [8]),
        ("Status:0xC000006D", [9]),
        ('EventID:(4624 OR 4625) AND NOT IpAddress:"-"', [0, 1, 9]),
        ("LogonType:3 || LogonType:10 && user:bob", [0, 1, 9]),
        ("(LogonType:3 OR LogonType:10) AND user:bob", [1]),
        ("!EventID:4624 computer:dc*", [9, 12, 16]),
        ("(EventID:3 OR EventID:1) AND computer:ws2 AND NOT notevil-site.com", [3, 4]),
        ("C:\\Users\\Jürgen\\Desktop\\naïve.txt", [13]),
        ("nothing_matches_this", []),
    ],
)
def test_query_matches_exactly(db: chdb_session.Session, query: str, expected: list[int]) -> None:
    assert matches(db, query) == expected


def test_compiled_forms() -> None:
    """The SQL forms the design relies on (index-friendly text search, null-safe numbers)."""
    assert compile_query("   ") == CompiledQuery("1", {})
    assert compile_query("Admin") == CompiledQuery(
        "hasToken(search_text, {q0:String})", {"q0": "admin"}
    )
    phrase = compile_query('"C:\\Windows\\System32\\cmd.exe"', param_prefix="f")
    assert phrase.sql.startswith("(position(search_text, {f0:String}) > 0 AND hasToken(")
    assert phrase.params["f0"] == "c:\\windows\\system32\\cmd.exe"
    # inner whole words prefilter through the index; the edges may be parts of longer tokens
    assert sorted(v for k, v in phrase.params.items() if k != "f0") == [
        "cmd",
        "system32",
        "windows",
    ]
    assert compile_query("x*y%_").params == {"q0": "%x%y\\%\\_%"}
    assert compile_query("EventID:4624").sql == "ifNull(event_id = {q0:Int64}, 0)"
    key = (  # the name, else the event's first key equal to it without spaces or underscores
        "if(mapContains(fields, {q0:String}), {q0:String}, arrayFirst(k -> "
        "replaceRegexpAll(k, {q2:String}, {q3:String}) = {q1:String}, mapKeys(fields)))"
    )
    port = compile_query("Port:>1")
    assert port.sql == f"ifNull(toFloat64OrNull(fields[{key}]) > {{q4:Float64}}, 0)"
    assert port.params["q1"] == "Port"
    new_value = compile_query('"New Value":*')
    assert new_value.sql == f"mapContains(fields, {key})"
    assert (new_value.params["q0"], new_value.params["q1"]) == ("New Value", "NewValue")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("EventID:abc", "'abc' is not a whole number at column 9"),
        ("EventID:[1 TO x]", "'x' is not a whole number at column 15"),
        ("seq:99999999999999999999", "99999999999999999999 is out of range at column 5"),
        ("ts:>notatime", "'notatime' is not an ISO 8601 time at column 5"),
        ("ts:2024-02-30", "'2024-02-30' is not a valid time"),
        ("ts:1800-01-01", "'1800-01-01' is outside the years 1900-2299"),
        ("ts:2024*", "wildcards cannot be used in times at column 4"),
    ],
)
def test_value_errors_say_where(query: str, message: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        compile_query(query)
    assert str(caught.value).startswith(message)


# -- injection ---------------------------------------------------------------------------------

PLACEHOLDER = re.compile(r"\{q\d+:(String|Int64|UInt64|Float64|DateTime64\(6, 'UTC'\))\}")
SQL_WORDS = {
    "AND", "OR", "NOT", "LIKE", "search_text", "hasToken", "position", "lowerUTF8", "fields",
    "mapContains", "notEmpty", "isNotNull", "ifNull", "toString", "toInt64OrNull",
    "toFloat64OrNull", "toDateTime64", "UTC", "ts", "event_id", "channel", "provider",
    "computer", "record_id", "level", "user_name", "user_sid", "file_id", "seq",
    "if", "arrayFirst", "k", "replaceRegexpAll", "mapKeys",
}  # fmt: skip


def assert_no_user_text(compiled: CompiledQuery) -> None:
    """The SQL is made only of our own vocabulary; every user literal is a parameter."""
    skeleton = PLACEHOLDER.sub(" ", compiled.sql)
    assert "{" not in skeleton and "}" not in skeleton
    assert skeleton.replace("'UTC'", "").count("'") == 0
    assert "--" not in skeleton and "/*" not in skeleton
    assert re.fullmatch(r"[A-Za-z0-9_ ()=<>!,\[\]'-]*", skeleton), skeleton
    assert set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", skeleton)) <= SQL_WORDS
    assert set(PLACEHOLDER.findall(compiled.sql)) <= {
        "String", "Int64", "UInt64", "Float64", "DateTime64(6, 'UTC')"
    }  # fmt: skip
    named = set(re.findall(r"\{(q\d+):", compiled.sql))
    assert named == set(compiled.params)


HOSTILE = [
    f'"{DROP}"',
    DROP,
    "a' OR '1'='1",
    "') OR 1=1 --",
    'x:"\') OR 1=1 --"',
    "{q0:String}",
    "user:{q0:String}",
    ":String}",
    'f:"}"',
    'f:"{"',
    '"\\\\"',
    "\\\\",
    "/* comment */ x",
    "-- comment",
    "EventID:1; DROP TABLE events",
    "Image:*'*",
    "user:\\'",
    "{{",
    "}}",
    "Port:>'1'",
    "ts:['2024' TO '2025']",
    "x:[a' TO b\\\\]",
    "x:['a TO b']",
    "a\\' OR 1=1",
    '"\\" OR 1=1 --"',
    "name:\"a\\\\' || '\"",
    "%%%___",
    "fields['x']:1",
]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_keep_the_sql_shape(db: chdb_session.Session, query: str) -> None:
    try:
        compiled = compile_query(query)
    except QuerySyntaxError:
        return
    assert_no_user_text(compiled)
    run(db, compiled)  # executes: the text was data, not SQL
    assert run(db, compile_query("")) == ALL  # and the table is intact


@pytest.mark.parametrize(
    "query",
    ['"{q0:String}"', 'user:"{q0:String}"', 'f:":String}"', "a' OR '1'='1", '"\') OR 1=1 --"'],
)
def test_hostile_queries_match_nothing(db: chdb_session.Session, query: str) -> None:
    assert matches(db, query) == []


def test_hostile_text_is_found_as_text(db: chdb_session.Session) -> None:
    assert matches(db, f'ScriptBlockText:"{DROP} \\"quoted\\""') == [7]
    assert matches(db, 'ScriptBlockText:*\\"quoted\\"') == [7]


SYNTAX = [*list("ab:\"\\{}()[]*?-!<>=' %_;\x00\t/."), "AND", "OR", "NOT", "TO", ":String}"]


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.sampled_from(SYNTAX) | st.text(max_size=3), max_size=14).map("".join))
def test_random_queries_compile_to_safe_sql(db: chdb_session.Session, query: str) -> None:
    try:
        compiled = compile_query(query)
    except QuerySyntaxError:
        return
    assert_no_user_text(compiled)
    run(db, compiled)  # must execute without a ClickHouse error

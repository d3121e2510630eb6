"""Pills: a clause for any value reads back as exactly that value; pills join the query."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casescope.store.pills import MAX_CLAUSE, Pivot, Source, clause, conjoin, nameable
from casescope.store.query import QuerySyntaxError, compile_query, parse_query
from casescope.store.query_ast import And, Literal, Match, Not, Text
from casescope.store.query_parse import EXISTS, FIELD_RE, KEYWORDS
from casescope.store.query_sql import CORE_FIELDS

#: Values that break naive quoting: quotes, colons, backslashes (a trailing one too),
#: wildcards, operators, parentheses, paths, URLs, whitespace, non-ASCII, bidi controls.
NASTY = [
    "",
    '"',
    'say "hi"',
    "C:\\Windows\\System32\\",
    "\\\\server\\share",
    "\\",
    "a\\*b",
    "*",
    "?",
    "sekurlsa::logonpasswords",
    "http://evil.example:8080/x?a=1&b=2",
    "10:15:00",
    "(x)",
    "AND",
    "NOT",
    "-enc",
    "[1 TO 2]",
    "{}",
    "a OR b",
    "tab\tnew\nline",
    " leading and trailing ",
    "<img src=x onerror=alert(1)>",
    "invoice\u202etxt.exe",
    "Jürgen 日本語 😀",
    "'; DROP TABLE events; --",
    "=cmd|' /C calc'!A0",
]
EVENT_FIELDS = st.from_regex(FIELD_RE, fullmatch=True).filter(
    lambda n: len(n) <= 12 and n not in KEYWORDS and n != EXISTS and n.lower() not in CORE_FIELDS
)
VALUES = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=30)


@pytest.mark.parametrize("value", NASTY)
@pytest.mark.parametrize("field", ["CommandLine", "Image", "host.name", "@x", "C", "TO"])
def test_nasty_values_round_trip(field: str, value: str) -> None:
    wanted = clause(field, value, Pivot.FOR)
    assert wanted is not None and parse_query(wanted) == Match(field, Literal(value))
    unwanted = clause(field, value, Pivot.OUT)
    assert unwanted is not None and parse_query(unwanted) == Not(Match(field, Literal(value)))
    compile_query(wanted)  # and compiles to SQL
    if value:
        anywhere = clause(field, value, Pivot.EVERYWHERE)
        assert anywhere is not None and parse_query(anywhere) == Text(Literal(value))


@settings(max_examples=500, deadline=None)
@given(EVENT_FIELDS, VALUES, st.sampled_from(Pivot))
def test_any_value_of_any_nameable_field_round_trips(field: str, value: str, pivot: Pivot) -> None:
    text = clause(field, value, pivot)
    if pivot is Pivot.EVERYWHERE and not value:
        assert text is None
        return
    assert text is not None
    expected = {
        Pivot.FOR: Match(field, Literal(value)),
        Pivot.OUT: Not(Match(field, Literal(value))),
        Pivot.EVERYWHERE: Text(Literal(value)),
    }[pivot]
    assert parse_query(text) == expected, text


@pytest.mark.parametrize(
    ("field", "source", "ok"),
    [
        ("computer", Source.COLUMN, True),
        ("event_id", Source.COLUMN, True),
        ("user_name", Source.COLUMN, True),
        ("host", Source.FIELD, False),  # the language reads `host:` as the computer column
        ("Level", Source.FIELD, False),
        ("TargetUserName", Source.FIELD, True),
        ("TargetUserName", Source.COLUMN, False),
        ("has space", Source.FIELD, False),
        ("9lives", Source.FIELD, False),
        ("AND", Source.FIELD, False),
        (EXISTS, Source.FIELD, False),
    ],
)
def test_only_names_that_mean_the_value_get_a_clause(field: str, source: Source, ok: bool) -> None:
    assert nameable(field, source) is ok
    assert (clause(field, "x", Pivot.FOR, source) is not None) is ok
    assert clause(field, "x", Pivot.EVERYWHERE, source) == "x"  # free text needs no name


def test_unusable_values_have_no_clause() -> None:
    assert clause("Note", "nul\x00byte", Pivot.FOR) is None  # NUL: not a query
    assert clause("Script", "x" * MAX_CLAUSE, Pivot.FOR) is None  # too long for a pill


def test_conjoin_ands_the_query_and_its_pills() -> None:
    assert conjoin("mimikatz OR lsass", []) == "mimikatz OR lsass"  # as typed
    pills = [clause("Image", "C:\\x.exe", Pivot.FOR), clause("TargetUserName", 'a"b', Pivot.OUT)]
    joined = conjoin("mimikatz OR lsass", [p for p in pills if p])
    assert parse_query(joined) == And(
        (
            parse_query("mimikatz OR lsass"),
            Match("Image", Literal("C:\\x.exe")),
            Not(Match("TargetUserName", Literal('a"b'))),
        )
    )
    assert parse_query(conjoin("", ["EventID:4624"])) == parse_query("EventID:4624")
    assert conjoin("", ["", " "]) == ""
    with pytest.raises(QuerySyntaxError, match="filter 2: unclosed"):
        conjoin("x", ["a", 'b:"c'])

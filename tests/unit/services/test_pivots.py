"""Pivot clauses: every value comes back exactly when the search parses the clause."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casescope.services.pivots import (
    MAX_PIVOT_CHARS,
    PivotKind,
    any_of,
    clause,
    narrowed,
    pivot,
    query_field,
)
from casescope.store.query import compile_query, parse_query
from casescope.store.query_parse import And, Literal, Match, Not, Or, Text

AWKWARD = [
    'say "hi"',
    "C:\\Windows\\System32\\cmd.exe",
    "C:\\",
    "\\\\server\\share\\x",
    'ends with backslash quote \\"',
    "a:b:c",
    "10:15:00",
    "::1",
    "http://evil.example:8080/x?a=1",
    "two  spaces and\ttab",
    "naïve Jürgen 東京 🙂",
    "AND",
    "NOT",
    "-enc",
    "!x",
    "*",
    "a*b?c",
    "(x) [y] {z}",
    ">=5",
    "",
    "0x1a4",
    "line\nbreak",
]


@pytest.mark.parametrize("value", AWKWARD)
@pytest.mark.parametrize("field", ["Image", "CommandLine", "host.name", "EventID", "user"])
def test_filter_clauses_parse_back_to_the_exact_value(field: str, value: str) -> None:
    text = clause(PivotKind.FOR, field, value)
    assert text is not None
    assert parse_query(text) == Match(field, Literal(value))
    out = clause(PivotKind.OUT, field, value)
    assert out is not None
    assert parse_query(out) == Not(Match(field, Literal(value)))
    if field != "EventID":  # a number column compiles numbers only
        compile_query(out)


@pytest.mark.parametrize("value", [v for v in AWKWARD if v.strip()])
def test_search_everywhere_is_free_text_of_the_value(value: str) -> None:
    text = clause(PivotKind.EVERYWHERE, None, value)
    assert text is not None
    assert parse_query(text) == Text(Literal(value))


@given(
    st.text(st.characters(exclude_characters="\x00"), max_size=60),
    st.sampled_from(["Image", "TargetObject", "a.b-c@d", "_x"]),
)
def test_any_value_round_trips(value: str, field: str) -> None:
    assert parse_query(clause(PivotKind.FOR, field, value)) == Match(field, Literal(value))
    assert parse_query(clause(PivotKind.OUT, field, value)) == Not(Match(field, Literal(value)))
    if value.strip():
        assert parse_query(clause(PivotKind.EVERYWHERE, None, value)) == Text(Literal(value))


def test_what_gets_no_clause() -> None:
    assert clause(PivotKind.EVERYWHERE, None, "  ") is None  # would match every event
    assert clause(PivotKind.FOR, None, "x") is None
    assert all(clause(k, "Image", "nul\x00byte") is None for k in PivotKind)  # refused by q
    long = "x" * (MAX_PIVOT_CHARS + 1)
    assert all(clause(k, "Image", long) is None for k in PivotKind)


def test_field_names_the_language_can_address() -> None:
    assert query_field("CommandLine") == "CommandLine"
    assert query_field("host.name") == "host.name"
    assert query_field("Threat Name") is None  # a space: not a field name
    assert query_field("Computer") is None  # an event field that the column name would shadow
    assert query_field("_exists_") is None
    assert query_field("computer", column=True) == "Computer"
    assert query_field("user_name", column=True) == "user"
    assert query_field("ts", column=True) is None


def test_narrowing_keeps_the_current_query_together() -> None:
    assert narrowed("", "EventID:1") == "EventID:1"
    assert narrowed("EventID:1", "EventID:1") == "EventID:1"
    both = parse_query(narrowed("a OR b", "Image:x"))
    assert both == And((Or((Text(Literal("a")), Text(Literal("b")))), Match("Image", Literal("x"))))


def test_pivot_links_narrow_the_search_and_everywhere_starts_afresh() -> None:
    search = {"q": "EventID:1", "computer": "PC01", "cursor": "abc", "sort": "computer"}
    links = pivot(search, "Image", 'C:\\x "y".exe')
    assert links.filter_for is not None and links.filter_out is not None
    assert links.filter_for["computer"] == "PC01" and links.filter_for["sort"] == "computer"
    assert "cursor" not in links.filter_for
    assert parse_query(links.filter_for["q"]) == And(
        (Match("EventID", Literal("1")), Match("Image", Literal('C:\\x "y".exe')))
    )
    assert parse_query(links.filter_out["q"]).children[1] == Not(
        Match("Image", Literal('C:\\x "y".exe'))
    )
    assert links.everywhere == {"q": '"C:\\x \\"y\\".exe"'}
    assert pivot({}, "EventID", "4624", everywhere=False).everywhere is None
    none = pivot({}, None, "x")
    assert none.filter_for is None and none.filter_out is None and none.everywhere == {"q": "x"}


def test_any_of_several_spellings() -> None:
    text = any_of("ParentProcessGuid", ["AB-CD", "{AB-CD}", "AB-CD"])
    assert parse_query(text) == Or(
        (
            Match("ParentProcessGuid", Literal("AB-CD")),
            Match("ParentProcessGuid", Literal("{AB-CD}")),
        )
    )
    assert parse_query(any_of("ProcessId", ["0x1a4"])) == Match("ProcessId", Literal("0x1a4"))

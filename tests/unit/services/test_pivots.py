"""Event-page pivots: filters become pills of the search the event came from, "search
everywhere" a new search; the clauses are `store.pills`' (tests/unit/store/test_pills.py)."""

from __future__ import annotations

from casescope.services.pivots import any_of, pivot, query_field
from casescope.store.pills import MAX_PILLS, Source
from casescope.store.query import parse_query
from casescope.store.query_ast import Literal, Match, Not, Or


def test_core_columns_and_event_fields_get_their_query_names() -> None:
    assert query_field("CommandLine") == ("CommandLine", Source.FIELD)
    assert query_field("computer", column=True) == ("Computer", Source.COLUMN)
    assert query_field("user_name", column=True) == ("user", Source.COLUMN)


def test_filters_add_pills_and_everywhere_starts_afresh() -> None:
    search = {"q": "EventID:1", "filter": ["Channel:Security"], "cursor": "abc", "sort": "x"}
    value = 'C:\\x "y".exe'
    links = pivot(search, query_field("Image"), value)
    assert links.filter_for is not None and links.filter_out is not None
    assert links.filter_for["q"] == "EventID:1" and links.filter_for["sort"] == "x"
    assert "cursor" not in links.filter_for  # a narrowed search starts at its first page
    *kept, pill = links.filter_for["filter"]
    assert kept == ["Channel:Security"]
    assert parse_query(pill) == Match("Image", Literal(value))
    assert parse_query(links.filter_out["filter"][-1]) == Not(Match("Image", Literal(value)))
    assert links.everywhere is not None and links.everywhere.keys() == {"q"}


def test_what_gets_no_pivot() -> None:
    number = pivot({}, query_field("event_id", column=True), "4624", everywhere=False)
    assert number.everywhere is None and number.filter_for is not None
    spaced = pivot({}, query_field("Threat Name"), "x")  # the language cannot name it
    assert spaced.filter_for is None and spaced.filter_out is None and spaced.everywhere
    shadowed = pivot({}, query_field("Computer"), "PC1")  # an event field the column shadows
    assert shadowed.filter_for is None
    assert pivot({}, query_field("Image"), "nul\x00byte").filter_for is None
    assert pivot({}, query_field("Image"), "   ").everywhere is None  # would match everything
    full = {"filter": [f"EventID:{n}" for n in range(MAX_PILLS)]}
    assert pivot(full, query_field("Image"), "x").filter_for is None


def test_any_of_several_spellings() -> None:
    text = any_of("ParentProcessGuid", ["AB-CD", "{AB-CD}", "AB-CD"])
    assert parse_query(text) == Or(
        (
            Match("ParentProcessGuid", Literal("AB-CD")),
            Match("ParentProcessGuid", Literal("{AB-CD}")),
        )
    )
    assert parse_query(any_of("ProcessId", ["0x1a4"])) == Match("ProcessId", Literal("0x1a4"))

"""Mark terms of the query language (`tag:`, `is:`, `has:`, `note:`): parsed into `Marked`,
rendered back to themselves, compiled through the lookup the search passes, refused with a
message where they are wrong; a quoted `"tag"` is still the event field of that name."""

from __future__ import annotations

import pytest

from casescope.store.query import (
    QuerySyntaxError,
    asks_for_hidden,
    compile_query,
    no_marks,
    parse_query,
    render,
)
from casescope.store.query_ast import And, Literal, Marked, MarkField, Match, Not, Or, Pattern
from casescope.store.query_parse import mark_terms


@pytest.mark.parametrize(
    ("text", "node"),
    [
        ("tag:lateral-movement", Marked(MarkField.TAG, Literal("lateral-movement"))),
        ("tag:lat*", Marked(MarkField.TAG, Pattern("lat*"))),
        ('tag:"two words"', Marked(MarkField.TAG, Literal("two words"))),
        ("is:starred", Marked(MarkField.IS, Literal("starred"))),
        ("is:HIDDEN", Marked(MarkField.IS, Literal("hidden"))),
        ("has:note", Marked(MarkField.HAS, Literal("note"))),
        ("has:tag", Marked(MarkField.HAS, Literal("tag"))),
        ('note:"pass the hash"', Marked(MarkField.NOTE, Literal("pass the hash"))),
        ('"tag":x', Match("tag", Literal("x"))),
        ("Tag:x", Match("Tag", Literal("x"))),
        (
            "tag:(a OR b)",
            Or((Marked(MarkField.TAG, Literal("a")), Marked(MarkField.TAG, Literal("b")))),
        ),
        (
            "EventID:4624 -is:hidden",
            And(
                (
                    Match("EventID", Literal("4624")),
                    Not(Marked(MarkField.IS, Literal("hidden"))),
                )
            ),
        ),
    ],
)
def test_parsed_and_rendered_back(text: str, node: object) -> None:
    assert parse_query(text) == node
    assert parse_query(render(parse_query(text))) == node


def test_an_event_field_named_like_a_mark_renders_quoted() -> None:
    assert render(Match("tag", Literal("x"))) == '"tag":x'
    assert render(Match("note", Pattern("a*"))) == '"note":a*'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("is:foo", "is: takes one of is:starred, is:hidden"),
        ("has:*", "has: takes one of has:note, has:tag"),
        ("tag:[a TO b]", "takes a name, not a range"),
        ("tag:>a", "takes a name, not a range"),
        ('note:""', "note: needs a value"),
    ],
)
def test_wrong_mark_terms_say_why(text: str, message: str) -> None:
    with pytest.raises(QuerySyntaxError, match=message):
        parse_query(text)


def test_compiled_through_the_lookup_and_refused_without_one() -> None:
    asked: list[Marked] = []

    def lookup(term: Marked) -> list[tuple[int, int]]:
        asked.append(term)
        return [(2, 5), (1, 7), (2, 5)]

    compiled = compile_query("tag:x OR is:starred", marks=lookup)
    assert asked == [Marked(MarkField.TAG, Literal("x")), Marked(MarkField.IS, Literal("starred"))]
    assert compiled.params["q0"] == [1, 2]
    assert compiled.params["q1"] == [(1 << 40) | 7, (2 << 40) | 5]
    assert compile_query("NOT tag:x", marks=no_marks).sql == "NOT (0)"
    with pytest.raises(QuerySyntaxError, match="can only be searched in a case"):
        compile_query("tag:x")


def test_which_queries_ask_for_hidden_events() -> None:
    assert asks_for_hidden("a OR (b AND is:hidden)")
    assert not asks_for_hidden("is:starred") and not asks_for_hidden("is:(")
    assert [t.field for t in mark_terms(parse_query("tag:a AND NOT note:b"))] == [
        MarkField.TAG,
        MarkField.NOTE,
    ]

"""Laws of the query language: any text compiles or fails cleanly; render/parse round-trips."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from casescope.store.query import QuerySyntaxError, compile_query, parse_query, render
from casescope.store.query_ast import (
    And,
    Compare,
    Exists,
    Literal,
    Marked,
    MarkField,
    MarkState,
    Node,
    Not,
    Op,
    Or,
    Pattern,
    Range,
    Text,
    make_glob,
)
from casescope.store.query_ast import Match as FieldMatch
from casescope.store.query_parse import EXISTS, FIELD_RE, KEYWORDS

#: Characters the grammar cares about, plus any other text (no NUL, no lone surrogates).
SPECIAL = [*"\\\"*?:() -![]{}<>=&|/\t\n.@_%'", "AND", "OR", "NOT", "TO", "&&", "||"]
CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
TEXT = st.lists(st.sampled_from(SPECIAL) | CHARS, max_size=8).map("".join)
BARE_NAMES = st.from_regex(FIELD_RE, fullmatch=True).filter(lambda n: len(n) <= 12)
NAMES = BARE_NAMES | TEXT.filter(bool)  # any other name is written in quotes ("New Value")
MATCH_NAMES = NAMES.filter(lambda n: n not in KEYWORDS and n != EXISTS)


@st.composite
def patterns(draw: st.DrawFn) -> Pattern:
    literal = (st.sampled_from(SPECIAL) | CHARS).map(lambda s: [(c, False) for c in s])
    wildcard = st.sampled_from([[("*", True)], [("?", True)]])
    chunks = draw(st.lists(literal | wildcard, min_size=1, max_size=6))
    parts = [part for chunk in chunks for part in chunk]
    if not any(wild for _, wild in parts):
        parts.append(("*", True))
    return Pattern(make_glob(parts))


VALUES = TEXT.map(Literal) | patterns()
BOUNDS = st.none() | TEXT
TERMS = st.one_of(
    st.builds(Text, VALUES),
    st.builds(FieldMatch, MATCH_NAMES, VALUES),
    st.builds(Compare, MATCH_NAMES, st.sampled_from(Op), TEXT),
    st.builds(Range, MATCH_NAMES, BOUNDS, BOUNDS, st.booleans(), st.booleans()),
    st.builds(Exists, NAMES),
    st.builds(
        Marked,
        st.sampled_from([MarkField.TAG, MarkField.NOTE]),
        VALUES.filter(lambda v: not isinstance(v, Literal) or v.text.strip()),
    ),
    st.sampled_from(
        [
            Marked(MarkField.IS, Literal(MarkState.STARRED.value)),
            Marked(MarkField.IS, Literal(MarkState.HIDDEN.value)),
            Marked(MarkField.HAS, Literal(MarkState.NOTE.value)),
            Marked(MarkField.HAS, Literal(MarkState.TAG.value)),
        ]
    ),
)


def _trees(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    several = st.lists(children, min_size=2, max_size=4).map(tuple)
    return st.one_of(st.builds(Not, children), several.map(And), several.map(Or))  # type: ignore[return-value]


TREES = st.recursive(TERMS, _trees, max_leaves=10)


@settings(max_examples=400, deadline=None)
@given(TREES)
def test_render_then_parse_is_identity(ast: Node) -> None:
    text = render(ast)
    assert parse_query(text) == ast, text


QUERY_TEXT = st.lists(st.sampled_from(SPECIAL) | st.text(max_size=3), max_size=16).map("".join)


@settings(max_examples=800, deadline=None)
@given(QUERY_TEXT | st.text(max_size=40))
def test_any_text_compiles_or_fails_with_a_syntax_error(text: str) -> None:
    try:
        compiled = compile_query(text)
    except QuerySyntaxError as exc:
        assert 0 <= exc.position <= len(text)
        assert f"at column {exc.position + 1}" in str(exc)
        return
    assert compiled.sql
    ast = parse_query(text)
    assert ast is None or parse_query(render(ast)) == ast  # what parses also round-trips


@settings(max_examples=300, deadline=None)
@given(TREES)
def test_rendered_trees_compile_or_fail_cleanly(ast: Node) -> None:
    try:
        compiled = compile_query(render(ast), param_prefix="p", marks=lambda term: [(1, 0)])
    except QuerySyntaxError:
        return  # e.g. a non-number compared with EventID
    assert all(name.startswith("p") for name in compiled.params)

"""A query is refused at parse time past CASESCOPE_QUERY_MAX_CHARS or _MAX_TERMS."""

from __future__ import annotations

import pytest

from casescope.config import Settings
from casescope.services.search import SearchRequest, build_where, query_limits
from casescope.store.query import QueryLimits, QuerySyntaxError, compile_query, parse_query

LIMITS = QueryLimits(max_chars=200, max_terms=5)


@pytest.mark.parametrize(
    "query",
    [
        "a b c d e",
        "a OR b OR c OR d OR e",
        "EventID:4624 AND user:(alice OR bob) NOT computer:dc1 AND _exists_:Image",
        'ts:[2024-01-01 TO 2024-02-01] "a phrase with many words in it"',
        "((((a)))) b",  # parentheses are not terms
    ],
)
def test_queries_within_the_limits_parse(query: str) -> None:
    assert parse_query(query, LIMITS) is not None


@pytest.mark.parametrize(
    ("query", "column"),
    [
        ("a b c d e f", 11),
        ("a OR b OR c OR d OR e OR f", 26),
        ("user:(a OR b OR c OR d OR e OR f)", 32),  # values of a field group are terms too
        ("NOT a NOT b NOT c NOT d NOT e NOT f", 35),
        ("a b c d e x:>1", 13),  # a field term is placed at its value
    ],
)
def test_a_query_of_too_many_terms_is_refused_at_the_first_one_over(
    query: str, column: int
) -> None:
    with pytest.raises(QuerySyntaxError) as refused:
        parse_query(query, LIMITS)
    assert refused.value.column == column
    assert "more than 5 terms (CASESCOPE_QUERY_MAX_TERMS)" in str(refused.value)
    assert "as IOCs" in str(refused.value)


def test_a_query_too_long_is_refused_before_it_is_parsed() -> None:
    text = "(" * 201  # would be a syntax error, and nests too deep: its length comes first
    with pytest.raises(QuerySyntaxError, match=r"longer than 200 characters \(CASESCOPE_QUERY"):
        parse_query(text, LIMITS)
    assert parse_query("x" * 200, LIMITS) is not None


def test_the_defaults_and_the_settings() -> None:
    assert QueryLimits() == QueryLimits(10_000, 200)
    assert compile_query(" ".join(["w"] * 200)).params  # 200 terms: within the default
    with pytest.raises(QuerySyntaxError, match="more than 200 terms"):
        compile_query(" ".join(["w"] * 201))
    settings = Settings(query_max_chars=50_000, query_max_terms=1_000)
    limits = query_limits(settings)
    where = build_where(SearchRequest(1, " ".join(["w"] * 1000), limits=limits))
    assert where.sql.count("hasToken") >= 1000  # a raised limit is honoured all the way to SQL

"""Tokens of INDEXED_TOKEN_CHARS characters or more stay out of the text index (a few hundred
KB of hex as one token made its merges outgrow the owner's memory budget), yet such events
are still found: by their other words through the index, by the long word through a scan."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from casescope.hunt.ioc import IocType
from casescope.hunt.normalise import normalise
from casescope.hunt.patterns import compile_pattern
from casescope.hunt.sql import hunt_queries
from casescope.parse.batch import BatchBuilder
from casescope.parse.schema import INDEXED_TOKEN_CHARS
from casescope.services import event_search as es
from casescope.services.search import SearchRequest, build_where
from casescope.store.events_table import DATABASE
from casescope.store.index import ChdbIndex
from casescope.store.query import QueryLimits
from tests.integration.conftest import index_of

T0 = 1_700_000_000_000_000  # microseconds
EVENTS = 40
BLOB_CHARS = 20_000


@pytest.fixture(scope="module")
def blobs() -> list[str]:
    return [os.urandom(BLOB_CHARS // 2).hex() for _ in range(EVENTS)]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, blobs: list[str]) -> Iterator[ChdbIndex]:
    home: Path = tmp_path_factory.mktemp("long_tokens")
    builder = BatchBuilder()
    edge = "b" * (INDEXED_TOKEN_CHARS - 1)
    for n, blob in enumerate(blobs):
        core = (T0 + n * 1_000_000, 4104, "PowerShell", "Prov", "WS1", n, 4, "bob", "")
        fields = {"ScriptBlockText": f"$payload = '{blob}' # stage{n}", "Edge": edge}
        builder.add(core, fields, "{}")
    chdb_index = index_of(home, builder.flush())
    yield chdb_index
    chdb_index.close()


def _count(index: ChdbIndex, query: str) -> int:
    # the whole blob is a query of BLOB_CHARS: past the default CASESCOPE_QUERY_MAX_CHARS
    request = SearchRequest(case_id=1, query=query, limits=QueryLimits(max_chars=BLOB_CHARS))
    return es.count_matches(index, build_where(request), None)[0]


def test_the_text_index_leaves_out_long_tokens(index: ChdbIndex) -> None:
    index_bytes = index.scalar(
        "SELECT sum(secondary_indices_uncompressed_bytes) FROM system.parts "
        f"WHERE active AND database = '{DATABASE}' AND table = 'events'"
    )
    # with the blobs as tokens it held more than their 800,000 characters
    assert 0 < index_bytes < 100_000


def test_events_with_long_tokens_are_still_found(index: ChdbIndex, blobs: list[str]) -> None:
    assert _count(index, "stage7") == 1  # a short word: through the index
    assert _count(index, "payload") == EVENTS
    assert _count(index, blobs[3]) == 1  # the long word itself: a scan
    assert _count(index, f"*{blobs[5][100:140]}*") == 1  # part of it: a wildcard, as before
    assert _count(index, "b" * (INDEXED_TOKEN_CHARS - 1)) == EVENTS  # the longest indexed


def test_long_words_are_never_asked_of_the_index() -> None:
    longest, too_long = "a" * (INDEXED_TOKEN_CHARS - 1), "a" * INDEXED_TOKEN_CHARS
    sql = build_where(SearchRequest(case_id=1, query=longest)).sql
    assert "hasToken" in sql
    sql = build_where(SearchRequest(case_id=1, query=too_long)).sql
    assert "hasToken" not in sql and "position" in sql


def test_an_ioc_holding_a_long_token_is_still_hunted(index: ChdbIndex, blobs: list[str]) -> None:
    ioc = replace(normalise(f"'{blobs[9]}'", IocType.STRING), id=1)  # quotes: one whole token
    assert not compile_pattern(ioc).tokens  # no prefilter the index could not answer
    (sql, params), *_ = hunt_queries([ioc], case_id=1)
    hits = index.query_rows(sql, params)
    assert {row["seq"] for row in hits} == {9}

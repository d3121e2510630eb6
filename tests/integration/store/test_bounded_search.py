"""Bounded match counts and sampled event-field facets, against a real chDB index."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from casescope.parse.batch import BatchBuilder
from casescope.services import event_search as es
from casescope.services.search import SearchRequest, build_where
from casescope.store.index import ChdbIndex
from tests.integration.conftest import index_of

T0 = 1_700_000_000_000_000  # microseconds
EVENTS = 40
#: Event n (seq n, one minute after n - 1): IpAddress cycles over three values, and only the
#: even events have one; every third event says "cmd.exe".
IPS = ("10.0.0.1", "10.0.0.2", "10.0.0.3")


def _fields(n: int) -> dict[str, str]:
    fields = {"CommandLine": "cmd.exe /c whoami" if n % 3 == 0 else "notepad.exe"}
    if n % 2 == 0:
        fields["IpAddress"] = IPS[(n // 2) % 3]
    return fields


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbIndex]:
    home: Path = tmp_path_factory.mktemp("bounded")
    builder = BatchBuilder()
    for n in range(EVENTS):
        host = "DC1" if n < 30 else "WS1"
        core = (T0 + n * 60_000_000, 4624, "Security", "Prov", host, n, 4, "alice", "")
        builder.add(core, _fields(n), "{}")
    chdb_index = index_of(home, builder.flush())
    yield chdb_index
    chdb_index.close()


def _where(query: str = "") -> tuple[str, dict[str, object]]:
    return build_where(SearchRequest(case_id=1, query=query))


def test_count_is_exact_up_to_the_limit(index: ChdbIndex) -> None:
    substring = _where('"cmd.exe"')  # a substring: no token prefilter, a scan
    assert es.count_matches(index, substring, None) == (14, True)
    assert es.count_matches(index, substring, 14) == (14, True)  # exactly the limit: exact
    assert es.count_matches(index, substring, 13) == (13, False)  # more than 13
    assert es.count_matches(index, substring, 5) == (5, False)
    assert es.count_matches(index, _where("nothing_here"), 5) == (0, True)
    assert es.count_matches(index, _where(), 10_000) == (EVENTS, True)


def test_search_page_says_whether_its_total_is_exact(index: ChdbIndex) -> None:
    spec = es.PageSpec(limit=10)
    capped = es.search_page(index, _where(), spec, count_limit=25)
    assert (capped.total, capped.total_exact) == (25, False)
    exact = es.search_page(index, _where(), spec, count_limit=None)
    assert (exact.total, exact.total_exact) == (EVENTS, True)
    # the rows and the keyset cursor do not depend on the count
    assert capped.rows == exact.rows and capped.next_cursor == exact.next_cursor
    assert len(capped.rows) == 10
    # walking every page still reaches every match, whatever the count said
    seen, cursor = [], None
    while True:
        page = es.search_page(index, _where(), es.PageSpec(cursor, 15), count_limit=3)
        assert (page.total, page.total_exact) == (3, False)
        seen += [int(r["seq"]) for r in page.rows]
        if page.next_cursor is None:
            break
        cursor = es.Cursor.decode(page.next_cursor)
    assert seen == list(range(EVENTS))


@pytest.mark.parametrize("descending", [False, True])
def test_sparse_and_dense_pages_are_the_same(index: ChdbIndex, descending: bool) -> None:
    """Few matches (exactly counted) are sorted, many are read in time order: same pages."""
    for query in ('"cmd.exe"', "", "computer:WS1"):
        pages = []
        for count_limit in (None, 1):  # exact (sparse: sorted) and capped (in time order)
            seen, cursor = [], None
            while True:
                spec = es.PageSpec(cursor, 4, descending=descending)
                page = es.search_page(index, _where(query), spec, count_limit=count_limit)
                seen += [int(r["seq"]) for r in page.rows]
                if page.next_cursor is None:
                    break
                cursor = es.Cursor.decode(page.next_cursor)
            pages.append(seen)
        assert pages[0] == pages[1] == sorted(pages[0], reverse=descending) and pages[0]


@pytest.mark.parametrize("sort", [es.SortKey.TIME, es.SortKey.COMPUTER])
@pytest.mark.parametrize("descending", [False, True])
def test_previous_pages_are_the_next_pages_walked_back(
    index: ChdbIndex, sort: es.SortKey, descending: bool
) -> None:
    """Pages forward from the first, and backward from the last (a keyset read in the
    reversed direction), are the same pages; each knows whether there is one before it."""
    forward, cursor = [], None
    while True:
        page = es.search_page(index, _where(), es.PageSpec(cursor, 7, sort, descending))
        forward.append([int(r["seq"]) for r in page.rows])
        assert (page.prev_cursor is None) == (cursor is None)
        if page.next_cursor is None:
            break
        cursor = es.Cursor.decode(page.next_cursor)
    assert len(forward) == 6 and sum(map(len, forward)) == EVENTS
    backward, cursor = [], None
    spec = es.PageSpec(None, 7, sort, descending, backward=True)
    while True:
        page = es.search_page(index, _where(), replace(spec, cursor=cursor))
        backward.append([int(r["seq"]) for r in page.rows])
        assert (page.next_cursor is None) == (cursor is None)  # the last page has no next
        if page.prev_cursor is None:
            break
        cursor = es.Cursor.decode(page.prev_cursor)
    assert [s for p in backward[::-1] for s in p] == [s for p in forward for s in p]
    assert all(len(p) == 7 for p in backward[:-1])  # from the end, the first page is short
    # "previous" from the third page is the second page
    pages = [es.search_page(index, _where(), es.PageSpec(None, 7, sort, descending))]
    for _ in range(2):
        after = es.Cursor.decode(pages[-1].next_cursor)
        pages.append(es.search_page(index, _where(), es.PageSpec(after, 7, sort, descending)))
    before = es.Cursor.decode(pages[-1].prev_cursor)
    back = es.search_page(index, _where(), es.PageSpec(before, 7, sort, descending, backward=True))
    assert [int(r["seq"]) for r in back.rows] == forward[1]


def _expected_ips(seqs: range | list[int]) -> Counter[str]:
    return Counter(IPS[(n // 2) % 3] for n in seqs if n % 2 == 0)


def test_event_field_facet_counts_a_labelled_sample_of_the_matches(index: ChdbIndex) -> None:
    sampled = es.top_values(index, _where(), "IpAddress", 20, sample=7)
    assert sampled.sample == 7
    # one part, stored in time order: the first 7 events with an IpAddress, seq 0, 2, ..., 12
    assert {r["value"]: r["events"] for r in sampled.values} == _expected_ips(range(0, 14, 2))
    assert sum(r["events"] for r in sampled.values) == 7
    assert es.top_values(index, _where(), "IpAddress", 20, sample=7) == sampled  # the same
    # all matches: exact, unlabelled, the same as without a sample
    full = es.top_values(index, _where(), "IpAddress", 20, sample=None)
    assert full.sample is None
    assert {r["value"]: r["events"] for r in full.values} == _expected_ips(range(EVENTS))
    assert es.top_values(index, _where(), "IpAddress", 20, sample=20) == full  # 20 matches
    assert es.top_values(index, _where(), "IpAddress", 20, sample=19).sample == 19
    # a query narrows the sample to its matches; fewer matches than the sample: exact
    narrow = es.top_values(index, _where("computer:WS1"), "IpAddress", 20, sample=100)
    assert narrow.sample is None
    assert {r["value"]: r["events"] for r in narrow.values} == _expected_ips(range(30, 40))
    assert es.top_values(index, _where(), "NoSuchField", 20, sample=3) == es.Facet([])


def test_column_facets_are_always_exact(index: ChdbIndex) -> None:
    hosts = es.top_values(index, _where(), "computer", 20, sample=3)
    assert hosts.sample is None
    assert hosts.values == [{"value": "DC1", "events": 30}, {"value": "WS1", "events": 10}]

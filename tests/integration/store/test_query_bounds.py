"""Every analyst query is bounded in time; loads and the owner's bookkeeping are not.

A real index of real EVTX events, opened with bounds of one microsecond (the smallest that
ClickHouse keeps: every query takes longer), and again with the default bounds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import pyarrow as pa
import pytest

from casescope.errors import QueryTimeoutError
from casescope.model.enums import FileType
from casescope.parse.files import iter_batches
from casescope.parse.report import ParseReport
from casescope.services import event_search as es
from casescope.services.search import ExportFormat, SearchRequest, build_where, search
from casescope.services.timeline import TimelineRequest, timeline
from casescope.store.event_lookup import get_event
from casescope.store.index import ChdbIndex, LoadItem
from casescope.store.query_bounds import QueryKind, QueryTimeouts
from casescope.store.segments import SegmentWriter

TINY = 1e-6
MESSAGE = "query took too long (1e-06 s): narrow the time range or the query"


@pytest.fixture(scope="module")
def segment(tmp_path_factory: pytest.TempPathFactory, attack_samples: Path) -> Path:
    """The events of a real Sysmon log as one segment."""
    home = tmp_path_factory.mktemp("bounds")
    log = attack_samples / "AutomatedTestingTools" / "PanacheSysmon_vs_AtomicRedTeam01.evtx"
    batches = list(iter_batches(log, FileType.EVTX, ParseReport()))
    with SegmentWriter(home / "seg" / "aa" / "events.parquet", home / "tmp") as writer:
        writer.write(pa.Table.from_batches(batches).combine_chunks().to_batches()[0])
        return writer.commit()


@pytest.fixture
def index(segment: Path, tmp_path: Path) -> Iterator[ChdbIndex]:
    """The segment loaded into an index whose queries may run one microsecond: the load
    itself is not bounded."""
    chdb_index = ChdbIndex(tmp_path / "index", timeouts=QueryTimeouts(TINY, TINY))
    chdb_index.load([LoadItem(1, 1, segment)])
    yield chdb_index
    chdb_index.close()


def _where(query: str = "") -> tuple[str, dict[str, object]]:
    return build_where(SearchRequest(case_id=1, query=query))


QUERIES = {
    "a page with its exact count": lambda ix: es.search_page(
        ix, _where("Image:*exe*"), es.PageSpec(), count_limit=None
    ),
    "an exact event-field facet": lambda ix: es.top_values(ix, _where(), "Image", sample=None),
    "a column facet": lambda ix: es.top_values(ix, _where(), "computer"),
    "one event": lambda ix: get_event(ix, 1, 1, 0),
    "the timeline of a search": lambda ix: timeline(ix, _where(), TimelineRequest()),
    "a CLI search": lambda ix: search(ix, SearchRequest(case_id=1, query="cmd.exe")),
    "an export": lambda ix: list(
        es.export_chunks(lambda: nullcontext(ix), _where(), ExportFormat.CSV)
    ),
}


@pytest.mark.parametrize("name", QUERIES)
def test_a_query_past_its_bound_is_stopped_with_a_clear_error(index: ChdbIndex, name: str) -> None:
    with pytest.raises(QueryTimeoutError) as stopped:
        QUERIES[name](index)
    assert str(stopped.value) == MESSAGE
    assert index.count() > 0  # the index answers the next query (bookkeeping: not bounded)


def test_each_kind_of_query_has_its_own_bound(segment: Path, tmp_path: Path) -> None:
    """Interactive queries (searches) get the short bound, streams (exports, IOC hunts)
    the long one."""
    index = ChdbIndex(tmp_path / "index", timeouts=QueryTimeouts(interactive=TINY, long=600))
    try:
        index.load([LoadItem(1, 1, segment)])
        with pytest.raises(QueryTimeoutError):
            es.count_matches(index, _where(), None)
        exported = es.export_chunks(lambda: nullcontext(index), _where(), ExportFormat.JSONL)
        assert sum(batch.num_rows for batch in exported) == index.count()
        with pytest.raises(QueryTimeoutError):
            index.query_rows("SELECT count() AS n FROM casescope.events", {})
        rows = index.query_rows("SELECT 1 AS one", {}, kind=QueryKind.LONG)
        assert rows == [{"one": 1}]
    finally:
        index.close()


def test_with_the_default_bounds_the_same_queries_answer(segment: Path, tmp_path: Path) -> None:
    index = ChdbIndex(tmp_path / "index")
    try:
        index.load([LoadItem(1, 1, segment)])
        for query in QUERIES.values():
            query(index)
        assert index.timeouts == QueryTimeouts(30.0, 600.0)
    finally:
        index.close()

"""The timeline against a real chDB index: empty buckets kept, counts as toStartOfInterval."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from casescope.parse.batch import BatchBuilder
from casescope.services.search import SearchRequest, build_where
from casescope.services.timeline import TimelineRequest, timeline
from casescope.store.histogram import BucketSize, TimeUnit, align, bucket_counts, match_span
from casescope.store.index import ChdbIndex
from tests.integration.conftest import index_of

LONE = datetime(2019, 3, 4, 5, 6, 7, tzinfo=UTC)
BURST = datetime(2023, 6, 1, 12, 0, tzinfo=UTC)
BURST_EVENTS = 300


def _micros(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbIndex]:
    """One event in 2019, 300 in 2023 (one every 7 minutes 13 s), two without a time."""
    builder = BatchBuilder()
    times = [LONE] + [BURST + n * timedelta(seconds=433) for n in range(BURST_EVENTS)]
    for n, moment in enumerate(times):
        core = (_micros(moment), 4624, "Security", "P", "DC1", n, 4, "alice", "")
        builder.add(core, {"n": str(n)}, "{}")
    for n in range(2):
        builder.add((None, 1, "Security", "P", "DC1", 1000 + n, 4, "bob", ""), {}, "{}")
    chdb_index = index_of(tmp_path_factory.mktemp("histogram"), builder.flush())
    yield chdb_index
    chdb_index.close()


def _where(query: str = "") -> tuple[str, dict[str, object]]:
    return build_where(SearchRequest(case_id=1, query=query))


def test_one_event_in_2019_is_years_away_from_the_2023_burst(index: ChdbIndex) -> None:
    """The dashboard drew these two as adjacent bars: now every bucket between is kept."""
    line = timeline(index, _where(), TimelineRequest())
    assert line.size == BucketSize(14, TimeUnit.DAY)
    assert 100 <= len(line.buckets) <= 120
    counts = [b.events for b in line.buckets]
    assert counts[0] == 1 and sum(counts) == BURST_EVENTS + 1 == line.total
    assert counts[-1] > 0 and len([c for c in counts if c]) in (2, 3)  # the lone one, the burst
    widths = {b.end - b.start for b in line.buckets}
    assert widths == {timedelta(days=14)}  # a linear axis
    assert all(a.end == b.start for a, b in zip(line.buckets, line.buckets[1:], strict=False))
    assert line.untimed == 2
    assert line.ticks and all(len(t.label) == 10 for t in line.ticks)


def test_counts_are_those_of_start_of_interval(index: ChdbIndex) -> None:
    size = BucketSize(1, TimeUnit.HOUR)
    first, last = BURST, BURST + timedelta(hours=36)
    for zone, offset in (("UTC", 0), ("Asia/Kolkata", 19800)):
        buckets = align(first, last, size, zone)
        counts = bucket_counts(index, _where(), buckets)
        reference = index.query_rows(
            "SELECT toStartOfInterval(ts + toIntervalSecond({off:Int32}), "
            "toIntervalSecond(3600)) - toIntervalSecond({off:Int32}) AS bucket, count() AS n "
            "FROM casescope.events WHERE case_id = 1 AND ts >= {lo:DateTime64(6, 'UTC')} "
            "AND ts < {hi:DateTime64(6, 'UTC')} GROUP BY bucket ORDER BY bucket",
            {
                "off": offset,
                "lo": buckets.origin.strftime("%Y-%m-%d %H:%M:%S"),
                "hi": buckets.end.strftime("%Y-%m-%d %H:%M:%S"),
            },
        )
        expected = {r["bucket"][:19]: int(r["n"]) for r in reference}
        got = {buckets.start(n).strftime("%Y-%m-%d %H:%M:%S"): c for n, c in enumerate(counts) if c}
        assert got == expected and sum(counts) == BURST_EVENTS


def test_a_given_range_sets_the_buckets_and_a_query_narrows_the_counts(index: ChdbIndex) -> None:
    start, end = BURST, BURST + timedelta(hours=2)
    request = SearchRequest(case_id=1, start=start, end=end)
    line = timeline(index, build_where(request), TimelineRequest(start, end, "UTC"))
    assert line.size == BucketSize(2, TimeUnit.MINUTE) and len(line.buckets) == 60
    assert line.buckets[0].start == start and line.buckets[-1].end == end
    assert line.total == len([n for n in range(BURST_EVENTS) if n * 433 < 7200])
    narrowed = build_where(SearchRequest(case_id=1, query="n:0", start=start, end=end))
    assert timeline(index, narrowed, TimelineRequest(start, end)).total == 0  # n:0 is 2019's
    assert match_span(index, _where("n:0")).first == LONE


def test_no_timed_match_is_an_empty_timeline(index: ChdbIndex) -> None:
    line = timeline(index, _where("user:bob"), TimelineRequest())
    assert (line.buckets, line.size, line.untimed) == ([], None, 2)
    assert timeline(index, _where("nothing_here"), TimelineRequest()).buckets == []

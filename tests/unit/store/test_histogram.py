"""Bucket choice and alignment of the timeline (pure functions: no index)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casescope.errors import CasescopeError
from casescope.services.timeline import TimelineRequest, axis_ticks
from casescope.store.histogram import (
    BUCKET_SIZES,
    MOST_BUCKETS,
    BucketSize,
    TimeUnit,
    align,
    choose_bucket,
)

T0 = datetime(2024, 3, 1, 10, 17, 33, 250_000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        (timedelta(0), BucketSize(1, TimeUnit.SECOND)),
        (timedelta(seconds=90), BucketSize(1, TimeUnit.SECOND)),
        (timedelta(minutes=10), BucketSize(10, TimeUnit.SECOND)),
        (timedelta(hours=1), BucketSize(1, TimeUnit.MINUTE)),
        (timedelta(hours=3), BucketSize(2, TimeUnit.MINUTE)),
        (timedelta(days=1), BucketSize(15, TimeUnit.MINUTE)),
        (timedelta(days=7), BucketSize(2, TimeUnit.HOUR)),
        (timedelta(days=30), BucketSize(8, TimeUnit.HOUR)),
        (timedelta(days=365), BucketSize(5, TimeUnit.DAY)),
        # the dashboard bug: one event in 2019, the rest in 2023
        (datetime(2023, 6, 1) - datetime(2019, 1, 1), BucketSize(14, TimeUnit.DAY)),
        (timedelta(days=365 * 300), BucketSize(1095, TimeUnit.DAY)),
    ],
)
def test_the_bucket_grows_from_seconds_to_days_with_the_range(
    span: timedelta, expected: BucketSize
) -> None:
    assert choose_bucket(span) == expected


def test_sizes_grow_by_at_most_twice() -> None:
    widths = [s.seconds for s in BUCKET_SIZES]
    assert widths == sorted(widths)
    assert all(b <= 2 * a for a, b in itertools.pairwise(widths))


@given(
    seconds=st.floats(min_value=0, max_value=400 * 365 * 86400, allow_nan=False),
    most=st.integers(min_value=10, max_value=1000),
)
def test_the_chosen_buckets_cover_the_range_in_at_most_most(seconds: float, most: int) -> None:
    span = timedelta(seconds=seconds)
    size = choose_bucket(span, most)
    buckets = align(T0, T0 + span, size, "UTC")
    assert buckets.origin <= T0 and buckets.end > T0 + span
    assert buckets.count <= most
    # past the one-second floor, at least about half of the buckets are used
    if size != BUCKET_SIZES[0] and size in BUCKET_SIZES:
        assert buckets.count >= most // 2 - 1


def test_a_range_of_120_buckets_fills_them() -> None:
    span = timedelta(minutes=MOST_BUCKETS - 1)
    assert choose_bucket(span) == BucketSize(1, TimeUnit.MINUTE)
    buckets = align(T0, T0 + span, choose_bucket(span), "UTC")
    assert buckets.count == MOST_BUCKETS


def test_buckets_start_on_round_local_times() -> None:
    day = BucketSize(1, TimeUnit.DAY)
    utc = align(T0, T0 + timedelta(days=3), day, "UTC")
    assert utc.origin == datetime(2024, 3, 1, tzinfo=UTC) and utc.count == 4
    berlin = align(T0, T0 + timedelta(days=3), day, "Europe/Berlin")
    local = berlin.origin.astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.hour, local.minute, local.day) == (0, 0, 1)
    kolkata = align(T0, T0 + timedelta(hours=5), BucketSize(1, TimeUnit.HOUR), "Asia/Kolkata")
    assert kolkata.origin.astimezone(ZoneInfo("Asia/Kolkata")).minute == 0
    assert kolkata.start(1) - kolkata.start(0) == timedelta(hours=1)
    seconds = align(T0, T0, BucketSize(1, TimeUnit.SECOND), "UTC")
    assert seconds.origin == T0.replace(microsecond=0) and seconds.count == 1


def test_axis_ticks_are_round_and_labelled_in_the_zone() -> None:
    end = T0 + timedelta(hours=6)
    ticks = axis_ticks(T0, end, "Europe/Berlin")
    assert 3 <= len(ticks) <= 9
    assert all(T0 <= t.at <= end for t in ticks)
    assert ticks[0].label.startswith("2024-03-01 ")  # the date once, then times of day
    assert all(len(t.label) == 5 and t.label.endswith(":00") for t in ticks[1:])
    days = axis_ticks(datetime(2019, 1, 1, tzinfo=UTC), datetime(2023, 6, 1, tzinfo=UTC), "UTC")
    assert all(len(t.label) == 10 for t in days)  # dates only


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (TimelineRequest(zone="Mars/Olympus"), "unknown time zone"),
        (TimelineRequest(zone="../../etc/passwd"), "unknown time zone"),
        (TimelineRequest(start=T0, end=T0 - timedelta(seconds=1)), "ends before it starts"),
        (TimelineRequest(most=0), "buckets must be"),
        (TimelineRequest(most=10**9), "buckets must be"),
    ],
)
def test_bad_requests_are_clear_errors(request_: TimelineRequest, message: str) -> None:
    with pytest.raises(CasescopeError, match=message):
        request_.check()

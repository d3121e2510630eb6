"""The timeline of a search: its matches per time bucket on a linear axis, with axis ticks.

The range is the search's own (`start`/`end`) where it has one, else that of its matches;
the bucket width follows from the range (`store.histogram.choose_bucket`), and every bucket
is kept, empty or not. Ticks are placed and labelled in the viewer's zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from casescope.errors import CasescopeError
from casescope.services.users import check_timezone
from casescope.store.histogram import (
    BUCKETS_RANGE,
    MOST_BUCKETS,
    BucketSize,
    TimeUnit,
    align,
    bucket_counts,
    choose_bucket,
    match_span,
)
from casescope.store.where import Where

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

#: About this many labelled ticks on the time axis.
AXIS_TICKS = 8
_ONE = timedelta(microseconds=1)


@dataclass(frozen=True)
class Bucket:
    start: datetime
    end: datetime
    events: int


@dataclass(frozen=True)
class Tick:
    at: datetime
    label: str


@dataclass(frozen=True)
class Timeline:
    """Matches per bucket; `size` None (and no buckets) when no match has a time."""

    buckets: list[Bucket]
    size: BucketSize | None
    zone: str
    untimed: int
    ticks: list[Tick]

    @property
    def total(self) -> int:
        return sum(b.events for b in self.buckets)


@dataclass(frozen=True)
class TimelineRequest:
    """What to draw: the search's time range (either end may be open), the viewer's zone,
    and the most buckets."""

    start: datetime | None = None
    end: datetime | None = None
    zone: str = "UTC"
    most: int = MOST_BUCKETS

    def check(self) -> None:
        """A clear error for an unknown zone, an inverted range, or a bucket count out of
        BUCKETS_RANGE."""
        check_timezone(self.zone)
        if self.start is not None and self.end is not None and self.start > self.end:
            raise CasescopeError("the time range ends before it starts (from is after to)")
        low, high = BUCKETS_RANGE
        if not low <= self.most <= high:
            raise CasescopeError(f"buckets must be between {low} and {high}")


def timeline(index: EventIndex, where: Where, request: TimelineRequest) -> Timeline:
    """The timeline of the matches of `where` (which already holds the time range)."""
    request.check()
    first, last, untimed = request.start, None, 0
    if request.end is not None:  # the range ends before `end`, and holds at least `start`
        last = request.end - _ONE if first is None else max(request.end - _ONE, first)
    if first is None or last is None:
        span = match_span(index, where)
        untimed = span.untimed
        first = first or span.first
        last = last or span.last
    if first is None or last is None:
        return Timeline([], None, request.zone, untimed, [])
    size = choose_bucket(last - first, request.most)
    buckets = align(first, last, size, request.zone)
    counts = bucket_counts(index, where, buckets)
    rows = [Bucket(buckets.start(n), buckets.start(n + 1), c) for n, c in enumerate(counts)]
    ticks = axis_ticks(buckets.origin, buckets.end, request.zone)
    return Timeline(rows, size, request.zone, untimed, ticks)


def axis_ticks(first: datetime, end: datetime, zone: str, most: int = AXIS_TICKS) -> list[Tick]:
    """Round times in `zone` between `first` and `end`, about `most` of them, labelled with
    what changes between them (a date, a time of day, seconds)."""
    size = choose_bucket(end - first, most)
    grid = align(first, end, size, zone)
    starts = [grid.start(n) for n in range(grid.count + 1)]
    inside = [t for t in starts if first <= t <= end]
    return _labelled(inside, size, zone)


def _labelled(times: list[datetime], size: BucketSize, zone: str) -> list[Tick]:
    tz = ZoneInfo(zone)
    ticks, day = [], None
    for moment in times:
        local = moment.astimezone(tz)
        if size.unit is TimeUnit.DAY:
            label = local.strftime("%Y-%m-%d")
        else:
            clock = "%H:%M:%S" if size.unit is TimeUnit.SECOND else "%H:%M"
            new_day = local.date() != day
            label = local.strftime(f"%Y-%m-%d {clock}" if new_day else clock)
            day = local.date()
        ticks.append(Tick(moment, label))
    return ticks

"""Matches over time: the bucket size for a range, the buckets, the histogram queries.

The axis is linear: every bucket has the same width, and buckets without a match are kept
(with 0), so one event in 2019 and 720,000 in 2023 are four years apart, not side by side.
The width is chosen from the range (`choose_bucket`): the smallest of `BUCKET_SIZES` that
covers it in at most `MOST_BUCKETS` buckets, from one second to many days. Buckets start on
multiples of their width in the viewer's zone (its UTC offset at the start of the range), so
hour and day buckets begin on local hours and midnights.

Counts are taken in ClickHouse by bucket number: `intDiv(microseconds since the first
bucket, width)`, which is what `toStartOfInterval(ts + offset, INTERVAL width SECOND) -
offset` gives (a test holds the two equal), in integers: exact for any time the index holds
(1900-2299), and cheaper than rounding each DateTime64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from casescope.store.events_table import DATABASE
from casescope.store.where import Where

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

#: The most buckets a histogram has by default (`choose_bucket`); a search's histogram has
#: at least about half as many, unless its range is shorter than that many seconds.
MOST_BUCKETS = 120
#: The bounds of a caller's `most` (the API answers 400 outside them).
BUCKETS_RANGE = (10, 1000)
#: How a missing time is stored (docs/architecture.md): such events are left out, and counted.
EPOCH_SQL = "toDateTime64(0, 6, 'UTC')"
_MICRO = 1_000_000


class TimeUnit(StrEnum):
    SECOND = "second"
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"


UNIT_SECONDS = {TimeUnit.SECOND: 1, TimeUnit.MINUTE: 60, TimeUnit.HOUR: 3600, TimeUnit.DAY: 86400}


@dataclass(frozen=True)
class BucketSize:
    count: int
    unit: TimeUnit

    @property
    def seconds(self) -> int:
        return self.count * UNIT_SECONDS[self.unit]

    @property
    def label(self) -> str:
        return f"{self.count} {self.unit.value}" + ("" if self.count == 1 else "s")


def _sizes(unit: TimeUnit, counts: tuple[int, ...]) -> tuple[BucketSize, ...]:
    return tuple(BucketSize(n, unit) for n in counts)


#: Widths to choose from, smallest first; each at most twice the one before it, so the chosen
#: one fills at least about half of the buckets allowed.
BUCKET_SIZES = (
    *_sizes(TimeUnit.SECOND, (1, 2, 3, 5, 10, 15, 20, 30)),
    *_sizes(TimeUnit.MINUTE, (1, 2, 3, 5, 10, 15, 20, 30)),
    *_sizes(TimeUnit.HOUR, (1, 2, 3, 4, 6, 8, 12)),
    *_sizes(TimeUnit.DAY, (1, 2, 3, 5, 7, 10, 14, 21, 30, 45, 60, 90, 120, 180, 270, 365, 730)),
    *_sizes(TimeUnit.DAY, (1095, 1825, 3650, 7300, 14600, 29200)),
)


def choose_bucket(span: timedelta, most: int = MOST_BUCKETS) -> BucketSize:
    """The smallest width that covers `span` in at most `most` buckets, wherever the span
    starts (a span of exactly k widths may touch k + 1 buckets)."""
    if most < 2:
        raise ValueError("a histogram needs at least 2 buckets")
    seconds = max(span.total_seconds(), 0.0)
    for size in BUCKET_SIZES:
        if seconds / size.seconds + 1 <= most:
            return size
    return BucketSize(math.ceil(seconds / 86400 / (most - 1)), TimeUnit.DAY)


@dataclass(frozen=True)
class Buckets:
    """`count` buckets of `size`, the first starting at `origin` (UTC)."""

    origin: datetime
    size: BucketSize
    count: int

    def start(self, n: int) -> datetime:
        return self.origin + timedelta(seconds=n * self.size.seconds)

    @property
    def end(self) -> datetime:
        return self.start(self.count)


def _micros(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact, unlike `timestamp()`)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * _MICRO + delta.microseconds


def _from_micros(micros: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)


def align(first: datetime, last: datetime, size: BucketSize, zone: str) -> Buckets:
    """The buckets of `size` covering [first, last], aligned to multiples of the width in
    `zone` (its UTC offset at `first`)."""
    offset = first.astimezone(ZoneInfo(zone)).utcoffset() or timedelta(0)
    width = size.seconds * _MICRO
    shift = int(offset.total_seconds()) * _MICRO
    origin = (_micros(first) + shift) // width * width - shift
    count = (_micros(last) - origin) // width + 1
    return Buckets(_from_micros(origin), size, max(1, count))


@dataclass(frozen=True)
class Span:
    """The first and last time of the matches (None when none has a time), and the number of
    matches without a time."""

    first: datetime | None
    last: datetime | None
    untimed: int


def _parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def match_span(index: EventIndex, where: Where) -> Span:
    """When the matches of `where` begin and end (events without a time left out)."""
    rows = index.query_rows(
        f"SELECT minIf(ts, ts > {EPOCH_SQL}) AS first, maxIf(ts, ts > {EPOCH_SQL}) AS last, "
        f"countIf(ts <= {EPOCH_SQL}) AS untimed, countIf(ts > {EPOCH_SQL}) AS timed "
        f"FROM {DATABASE}.events WHERE {where.sql}",
        where.params,
    )
    row = rows[0] if rows else {"timed": 0, "untimed": 0}
    if not int(row["timed"]):
        return Span(None, None, int(row["untimed"]))
    return Span(_parse_ts(row["first"]), _parse_ts(row["last"]), int(row["untimed"]))


def bucket_counts(index: EventIndex, where: Where, buckets: Buckets) -> list[int]:
    """The number of matches in each bucket (0 where none), in time order."""
    params = where.with_params(
        h_origin=_micros(buckets.origin),
        h_width=buckets.size.seconds * _MICRO,
        h_lo=buckets.origin.strftime("%Y-%m-%d %H:%M:%S.%f"),
        h_hi=buckets.end.strftime("%Y-%m-%d %H:%M:%S.%f"),
    )
    rows = index.query_rows(
        "SELECT intDiv(toUnixTimestamp64Micro(ts) - {h_origin:Int64}, {h_width:Int64}) AS n, "
        f"count() AS events FROM {DATABASE}.events WHERE {where.sql} "
        "AND ts >= {h_lo:DateTime64(6, 'UTC')} AND ts < {h_hi:DateTime64(6, 'UTC')} "
        f"AND ts > {EPOCH_SQL} GROUP BY n",
        params,
    )
    counts = [0] * buckets.count
    for row in rows:
        counts[int(row["n"])] = int(row["events"])
    return counts

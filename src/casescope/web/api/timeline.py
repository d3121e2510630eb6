"""The timeline of a search (its matches over time) and the event-field names of its matches.

Both take the search's own parameters (`q`, `filter`, `start`, `end`, the filters), so the
search page's chart and sidebar describe exactly the results below them; the dashboard asks
without any (the whole case).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from casescope.errors import CasescopeError
from casescope.services import event_search as es
from casescope.services.search import query_limits
from casescope.services.timeline import Timeline, TimelineRequest, timeline
from casescope.store.fields import field_names
from casescope.store.histogram import BUCKETS_RANGE, MOST_BUCKETS
from casescope.store.pills import Source, nameable
from casescope.web.api.params import Form
from casescope.web.security import CaseRead, State
from casescope.web.timefmt import when

router = APIRouter(prefix="/api/cases/{case_id}", tags=["search"])


class BucketOut(BaseModel):
    start: datetime = Field(description="Start of the bucket (UTC, inclusive).")
    end: datetime = Field(description="End of the bucket (UTC, exclusive).")
    events: int
    label: str = Field(description="The start in the requested zone, with the zone's name.")


class TickOut(BaseModel):
    at: datetime
    label: str = Field(description="The time in the requested zone (date, time of day, ...).")


class TimelineOut(BaseModel):
    """Matches per bucket on a linear time axis: every bucket, empty ones included."""

    tz: str = Field(description="The IANA zone of the labels.")
    bucket: str | None = Field(description='The bucket width in words ("15 minutes").')
    bucket_seconds: int
    total: int = Field(description="Matches with a time (the sum of the buckets).")
    untimed: int = Field(description="Matches without a time (left out of the buckets).")
    max_events: int
    buckets: list[BucketOut]
    ticks: list[TickOut]


def _out(line: Timeline) -> TimelineOut:
    return TimelineOut(
        tz=line.zone,
        bucket=line.size.label if line.size else None,
        bucket_seconds=line.size.seconds if line.size else 0,
        total=line.total,
        untimed=line.untimed,
        max_events=max((b.events for b in line.buckets), default=0),
        buckets=[
            BucketOut(start=b.start, end=b.end, events=b.events, label=when(b.start, line.zone))
            for b in line.buckets
        ],
        ticks=[TickOut(at=t.at, label=t.label) for t in line.ticks],
    )


@router.get("/histogram", response_model=TimelineOut)
def histogram(
    scope: CaseRead,
    state: State,
    form: Form,
    tz: Annotated[
        str | None, Query(max_length=64, description="IANA zone (default: the user's).")
    ] = None,
    buckets: Annotated[
        int,
        Query(description=f"The most buckets ({BUCKETS_RANGE[0]}-{BUCKETS_RANGE[1]})."),
    ] = MOST_BUCKETS,
) -> TimelineOut:
    """The search's matches per time bucket: the bucket width follows from the range (the
    search's `start`/`end`, else its matches' first and last time), from one second to many
    days; empty buckets are kept. 400 for an unknown zone, `start` after `end`, or a bucket
    count out of range."""
    request = form.request(scope.case_id, query_limits(state.settings))
    zone = tz or scope.principal.user.timezone
    spec = TimelineRequest(request.start, request.end, zone, buckets)
    try:
        spec.check()
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None
    where = es.build_filtered_where(state.db, request, form.filters())
    with state.index.use() as index:
        return _out(timeline(index, where, spec))


class FieldOut(BaseModel):
    name: str
    events: int = Field(description="Matches (of the sample, if any) that have the field.")
    filterable: bool = Field(
        description="Whether `name:value` in the query language means this field (not a "
        "name it cannot write, nor one it reads as a core column)."
    )


class FieldsOut(BaseModel):
    """Event-field names of the matches, most common first."""

    sample: int | None = Field(
        description="Set when the names were counted over this many matches only."
    )
    fields: list[FieldOut]


@router.get("/fields", response_model=FieldsOut)
def fields(
    scope: CaseRead,
    state: State,
    form: Form,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> FieldsOut:
    """The event fields present in the matches (all events without search parameters),
    counted over the first `CASESCOPE_FACET_SAMPLE_EVENTS` matches: for the field sidebar
    and for field-name completion."""
    where = es.build_filtered_where(
        state.db, form.request(scope.case_id, query_limits(state.settings)), form.filters()
    )
    size = state.settings.facet_sample_events or None
    with state.index.use() as index:
        found = field_names(index, where, size, limit)
    return FieldsOut(
        sample=found.sample,
        fields=[
            FieldOut(name=n, events=c, filterable=nameable(n, Source.FIELD)) for n, c in found.names
        ],
    )

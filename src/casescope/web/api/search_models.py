"""Response models of the search API (web/api/search.py) and of saved searches' runs.

Events are the index's rows as they are: times in the index's UTC text
(`2024-03-01 10:00:00.123456`), every column, the event's fields, and its marks.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from casescope.hunt.ioc import IocType
from casescope.model.users import EventMark
from casescope.web.api.models import IsoTime


class MarkOut(BaseModel):
    kind: EventMark
    label: str = Field(description='The tag ("" for a star or a hide).')
    by: str = Field(description="Who set it.")
    at: IsoTime = Field(description="When it was set.")


class EventOut(BaseModel):
    """One event of the index, with its marks."""

    case_id: int
    file_id: int
    seq: int = Field(description="The event's position in its file (from 0).")
    ts: str = Field(description="The event's time: UTC, `YYYY-MM-DD HH:MM:SS.ffffff`.")
    event_id: int | None
    channel: str
    provider: str
    computer: str
    record_id: int | None
    level: int | None = Field(description="The record's level (EVTX: 1 critical to 5 verbose).")
    user_name: str
    user_sid: str
    fields: dict[str, str] = Field(description="Every field of the event, as text.")
    raw: str | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="The original record: in one event, and in search rows with `raw=true` "
        "(absent otherwise).",
    )
    marks: list[MarkOut] = Field(description="Tags, stars and hides of the event.")
    notes: int = Field(default=0, description="Notes on the event (`GET …/notes`).")


class EventsPage(BaseModel):
    """A keyset page of events: pass `next_cursor` back as `cursor` for the next one, or
    `prev_cursor` with `direction=prev` for the one before."""

    total: int = Field(description="Matches, exact when `total_exact`, else a lower bound.")
    total_exact: bool
    rows: list[EventOut]
    next_cursor: str | None
    prev_cursor: str | None


class FacetValue(BaseModel):
    value: str | int | None = Field(description="A value of the column or field (null: none).")
    events: int = Field(description="Matches that have it.")
    sample: int | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="Present when the counts come from this many matches only (an event "
        "field, past `CASESCOPE_FACET_SAMPLE_EVENTS`).",
    )


class IocHitsOut(BaseModel):
    """The hits of one IOC in the case."""

    ioc_id: int
    type: IocType
    value: str
    enabled: bool
    hits: int
    events: int = Field(description="Events it hit.")
    files: int = Field(description="Files it hit.")

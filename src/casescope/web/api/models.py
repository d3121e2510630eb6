"""Response pieces several routers share: `{"ok": true}`, work queued again, and times.

Times in the metadata DB's answers are written as `datetime.isoformat()`, as these routes
always wrote them (pydantic would write UTC as `Z`, and a client comparing text would see a
change): `IsoTime` keeps that text and documents it as an ISO 8601 `date-time`. A time read
back from SQLite has no offset (it is UTC); one the request itself has just set keeps its
`+00:00`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, PlainSerializer, WithJsonSchema


def _iso(moment: datetime) -> str:
    return moment.isoformat()


IsoTime = Annotated[
    datetime,
    PlainSerializer(_iso, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class OkOut(BaseModel):
    """The change was made (a refused one is a 4xx with `detail`)."""

    ok: bool = True


class QueuedOut(BaseModel):
    """Files queued again (failed ones retried), as one new bulk operation."""

    queued: int = Field(description="Files queued.")
    operation_id: int | None = Field(description="Their operation; null when none was queued.")

"""Ids in requests: bounded to what the metadata DB and the index hold.

A path, query or body id past 2**63 - 1 made SQLite raise OverflowError, and a negative one
reached chDB as a UInt64 parameter: both were 500s. These types answer 422 instead, and
`parse_id` reads an id typed into a form or a query string (ASCII digits only: `str.isdigit`
is also true for "²", which `int` refuses).
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Path
from pydantic import Field

#: The largest integer of SQLite's INTEGER and PostgreSQL's BIGINT.
MAX_ID = 2**63 - 1
#: Digits of the longest id `parse_id` accepts (every 18-digit number is below MAX_ID).
_ID_TEXT = re.compile(r"[0-9]{1,18}", re.ASCII)

PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
#: An event's sequence number in its file (from 0).
PathSeq = Annotated[int, Path(ge=0, le=MAX_ID)]
BodyId = Annotated[int, Field(ge=1, le=MAX_ID)]


def parse_id(text: str) -> int | None:
    """The id written in `text` (surrounding spaces allowed), or None if it is not one."""
    text = text.strip()
    return int(text) if _ID_TEXT.fullmatch(text) else None


def parse_ids(values: list[object]) -> list[int]:
    """The ids among form values; anything else is left out."""
    return [i for i in (parse_id(str(v)) for v in values) if i is not None]

"""Ids in requests: bounded to what the metadata DB and the index hold.

A path, query or body id past 2**63 - 1 made SQLite raise OverflowError, one past 2**31 - 1
made PostgreSQL refuse an INTEGER parameter, and a negative one reached chDB as a UInt64
parameter: all were 500s. These types answer 422 instead, and
`parse_id` reads an id typed into a form or a query string (ASCII digits only: `str.isdigit`
is also true for "²", which `int` refuses).
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Path
from pydantic import Field

#: The largest row id: id columns are INTEGER, which PostgreSQL keeps in 32 bits.
MAX_ID = 2**31 - 1
#: The largest event sequence number (BIGINT in the metadata DB, UInt64 in the index).
MAX_SEQ = 2**63 - 1
#: Digits of the longest id `parse_id` reads (MAX_ID has 10).
_ID_TEXT = re.compile(r"[0-9]{1,10}", re.ASCII)

PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
#: An event's sequence number in its file (from 0).
PathSeq = Annotated[int, Path(ge=0, le=MAX_SEQ)]
BodyId = Annotated[int, Field(ge=1, le=MAX_ID)]
BodySeq = Annotated[int, Field(ge=0, le=MAX_SEQ)]


def parse_id(text: str) -> int | None:
    """The id written in `text` (surrounding spaces allowed), or None if it is not one."""
    text = text.strip()
    if not _ID_TEXT.fullmatch(text) or int(text) > MAX_ID:
        return None
    return int(text)


def parse_ids(values: list[object]) -> list[int]:
    """The ids among form values; anything else is left out."""
    return [i for i in (parse_id(str(v)) for v in values) if i is not None]

"""Hand-made event batches in the event schema, for the IOC tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pyarrow as pa

from casescope.hunt.ioc import Ioc, IocType
from casescope.hunt.normalise import normalise
from casescope.parse.schema import EVENT_SCHEMA

_STRING_DEFAULTS = {"channel": "Security", "provider": "Microsoft-Windows-Security-Auditing"}


def make_batch(rows: Sequence[Mapping[str, Any]], first_seq: int = 0) -> pa.RecordBatch:
    """A batch whose row i has seq first_seq + i; `fields` is a dict, other keys override."""
    columns: dict[str, list[Any]] = {name: [] for name in EVENT_SCHEMA.names}
    for i, row in enumerate(rows):
        for name in EVENT_SCHEMA.names:
            if name == "seq":
                value = row.get("seq", first_seq + i)
            elif name == "fields":
                value = list(row.get("fields", {}).items())
            elif EVENT_SCHEMA.field(name).type == pa.string():
                value = row.get(name, _STRING_DEFAULTS.get(name, ""))
            else:
                value = row.get(name)
            columns[name].append(value)
    return pa.RecordBatch.from_pydict(columns, schema=EVENT_SCHEMA)


def ioc(value: str, ioc_type: IocType | str | None = None, ioc_id: int = 1) -> Ioc:
    """A normalised IOC with an id."""
    return replace(normalise(value, ioc_type), id=ioc_id)

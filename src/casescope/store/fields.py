"""The event-field names of a search's matches, with how many matches have each.

The names are the keys of the `fields` map (its largest column), so they are counted over a
sample as `event_search.top_values` counts values: the first `sample` matches in the index's
storage order, read by one thread so that the sample is the same on every call. With fewer
matches than `sample` the counts are exact and say so (`FieldNames.sample` None).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from casescope.store.events_table import DATABASE
from casescope.store.where import Where

if TYPE_CHECKING:
    from casescope.store.index import EventIndex


@dataclass(frozen=True)
class FieldNames:
    """(name, matches having it), most common first; `sample` as in the module's docstring."""

    names: list[tuple[str, int]]
    sample: int | None = None


def field_names(index: EventIndex, where: Where, sample: int | None, limit: int) -> FieldNames:
    """The `limit` most common field names among the first `sample` matches of `where`
    (None: among all of them)."""
    if sample is None:
        rows = index.query_rows(
            f"SELECT name, count() AS events FROM {DATABASE}.events "
            f"ARRAY JOIN mapKeys(fields) AS name WHERE {where.sql} "
            "GROUP BY name ORDER BY events DESC, name LIMIT {f_lim:UInt64}",
            where.with_params(f_lim=limit),
        )
        return FieldNames([(str(r["name"]), int(r["events"])) for r in rows])
    params = where.with_params(f_sample=sample, f_sample1=sample + 1, f_lim=limit)
    first = (
        "SELECT mapKeys(fields) AS keys, _part AS part, _part_offset AS offset "
        f"FROM {DATABASE}.events WHERE {where.sql} LIMIT {{f_sample1:UInt64}}"
    )
    numbered = (
        "SELECT keys, row_number() OVER (ORDER BY part, offset) AS n, "
        f"count() OVER () AS seen FROM ({first})"
    )
    rows = index.query_rows(
        f"SELECT name, count() AS events, any(seen) AS seen FROM ({numbered}) "
        "ARRAY JOIN keys AS name WHERE n <= {f_sample:UInt64} "
        "GROUP BY name ORDER BY events DESC, name LIMIT {f_lim:UInt64} SETTINGS max_threads = 1",
        params,
    )
    seen = int(rows[0]["seen"]) if rows else 0
    names = [(str(r["name"]), int(r["events"])) for r in rows]
    return FieldNames(names, sample if seen > sample else None)

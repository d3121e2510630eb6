"""Process trees and process activity: the store's lookups fed to the pure reconstruction.

From any process event (a creation, or an event naming its process) the tree is gathered in
bounded steps: the process itself, then its parents one at a time (each one query of the
parent's GUID or id before the child's start, newest first), then its descendants a level at
a time (one query for the level's later instances and exits, which bound each one's
lifetime, one for their children within those lifetimes). The reconstruction and its limits
are `process_graph`'s; what is not shown is counted, and a link away.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from casescope.errors import CasescopeError
from casescope.services.process_graph import (
    SAME_PROCESS_SECONDS,
    ProcessPool,
    ProcessRecord,
    ProcessTree,
    TreeLimits,
    build_tree,
)
from casescope.services.process_records import (
    actor_record,
    as_datetime,
    creation_record,
    records_from_rows,
)
from casescope.store.process_events import (
    ProcessKeys,
    Relation,
    TimeWindow,
    activity_where,
    process_rows,
)
from casescope.store.where import Where

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

logger = logging.getLogger(__name__)

#: How far apart a Sysmon 1 and a 4688 of one process may be logged.
TWIN = timedelta(seconds=SAME_PROCESS_SECONDS)
#: Candidates read for one parent: its latest instances and exits before the child.
PARENT_CANDIDATES = 20


class NotAProcessEvent(CasescopeError):
    """The event names no process (no creation, no ProcessGuid or ProcessId)."""


def _describe(row: dict[str, Any]) -> str:
    return (
        f"event {row['file_id']}:{row['seq']} ({row.get('channel') or '?'} {row.get('event_id')})"
    )


def find_process(
    index: EventIndex, case_id: int, row: dict[str, Any]
) -> tuple[ProcessRecord, ProcessPool]:
    """The process of an event: the one it created, else the one it names, found by its
    creation event where the logs have it (else known only from this event)."""
    pool = ProcessPool()
    created = creation_record(row)
    if created is not None and created.ref is not None:
        pool.add([created])
        twins = TimeWindow(created.ts - TWIN, created.ts + TWIN) if created.ts else TimeWindow()
        _add(pool, process_rows(index, case_id, keys_of([created]), (Relation.INSTANCES,), twins))
        return pool.resolve(created.ref) or created, pool
    actor = actor_record(row)
    if actor is None:
        raise NotAProcessEvent(
            f"{_describe(row)} names no process: a process tree starts from a process "
            "creation (Sysmon 1, Security 4688) or an event with a ProcessGuid or ProcessId"
        )
    at = as_datetime(row.get("ts"))
    rows = process_rows(
        index,
        case_id,
        keys_of([actor]),
        (Relation.INSTANCES,),
        TimeWindow(until=at),
        newest_first=True,
        limit=PARENT_CANDIDATES,
    )
    _add(pool, rows)
    found = pool.instance(actor.computer, actor.guid, actor.pid, at) if at else None
    if found is not None:
        return found, pool
    pool.add([actor])
    return actor, pool


def keys_of(records: Sequence[ProcessRecord], *, parents: bool = False) -> ProcessKeys:
    """The GUIDs and ids of these processes (or of their parents), on their computer."""
    guids = {r.parent_guid if parents else r.guid for r in records} - {""}
    pids = {r.parent_pid if parents else r.pid for r in records} - {None}
    return ProcessKeys(records[0].computer, frozenset(guids), frozenset(pids))  # type: ignore[arg-type]


def _add(pool: ProcessPool, rows: list[dict[str, Any]]) -> None:
    starts, ends = records_from_rows(rows)
    pool.add(starts, ends)


def _walk_up(
    index: EventIndex, case_id: int, pool: ProcessPool, focus: ProcessRecord, most: int
) -> None:
    """Fetch the parents' candidates, one generation per query, until none is found."""
    current, seen = focus, set()
    for _ in range(most + 1):
        if current.node_id in seen or current.ts is None:
            return
        seen.add(current.node_id)
        keys = keys_of([current], parents=True)
        rows = process_rows(
            index,
            case_id,
            keys,
            (Relation.INSTANCES,),
            TimeWindow(until=current.ts),
            newest_first=True,
            limit=PARENT_CANDIDATES,
        )
        _add(pool, rows)
        parent = pool.parent_of(current)
        if parent is None:
            return
        current = parent


def _lifetimes(pool: ProcessPool, frontier: Sequence[ProcessRecord]) -> TimeWindow:
    """From the earliest start to the latest end of these processes (open if one is)."""
    starts = [r.ts for r in frontier]
    ends = [pool.until(r) for r in frontier]
    since = None if any(s is None for s in starts) else min(s for s in starts if s)
    until = None if any(e is None for e in ends) else max(e for e in ends if e)
    return TimeWindow(since, until)


def _walk_down(
    index: EventIndex, case_id: int, pool: ProcessPool, focus: ProcessRecord, limits: TreeLimits
) -> None:
    """Fetch descendants a level at a time: one level past `limits.depth`, so that what is
    not shown is counted; at most `limits.nodes` processes per level are followed."""
    frontier: list[ProcessRecord] = [focus]
    for _ in range(limits.depth + 1):
        keys = keys_of(frontier)
        starts = [r.ts for r in frontier if r.ts is not None]
        since = min(starts) if len(starts) == len(frontier) else None
        _add(pool, process_rows(index, case_id, keys, (Relation.INSTANCES,), TimeWindow(since)))
        _add(
            pool,
            process_rows(index, case_id, keys, (Relation.CHILDREN,), _lifetimes(pool, frontier)),
        )
        kids = [kid for record in frontier for kid in pool.children_of(record)]
        if not kids:
            return
        frontier = kids[: limits.nodes]


def process_tree(
    index: EventIndex, case_id: int, row: dict[str, Any], limits: TreeLimits
) -> ProcessTree:
    """The tree around the process of event `row` (NotAProcessEvent if it names none)."""
    focus, pool = find_process(index, case_id, row)
    _walk_up(index, case_id, pool, focus, limits.ancestors)
    _walk_down(index, case_id, pool, focus, limits)
    focus = pool.get(focus.node_id) or focus
    return build_tree(pool, focus, limits)


@dataclass(frozen=True)
class Lifetime:
    """A process and the window its activity is looked for in."""

    process: ProcessRecord
    window: TimeWindow


def lifetime(index: EventIndex, case_id: int, row: dict[str, Any]) -> Lifetime:
    """The process of event `row` and its lifetime (start to exit or next instance; for a
    process known only by its id, the gap between the other processes with that id)."""
    focus, pool = find_process(index, case_id, row)
    since = focus.ts
    if since is None and not focus.guid and focus.pid is not None:
        since = as_datetime(row.get("ts"))
    rows = process_rows(
        index,
        case_id,
        keys_of([focus]),
        (Relation.INSTANCES,),
        TimeWindow(since=since),
        limit=PARENT_CANDIDATES,
    )
    _add(pool, rows)
    if focus.ts is None and not focus.guid and focus.pid is not None and since is not None:
        start, end = pool.gap_around(focus.computer, focus.pid, since)
        return Lifetime(focus, TimeWindow(start, end))
    return Lifetime(focus, TimeWindow(focus.ts, pool.until(focus)))


def activity_filter(case_id: int, life: Lifetime) -> Where:
    """WHERE of the events the process did in its lifetime (page it with the search's
    keyset pages)."""
    return activity_where(case_id, keys_of([life.process]), life.window)

"""Process trees from process events: a pure reconstruction over event records.

A process is known from its creation event: Sysmon 1 (ProcessGuid, ParentProcessGuid,
decimal ProcessId) or Security 4688 (NewProcessId; ProcessId is the creator's; both hex such
as `0x1a4`). A child belongs to the parent *instance* that

- has the child's ParentProcessGuid (Sysmon), or else the child's parent process id on the
  same computer (4688, or a Sysmon child whose parent was logged by 4688 only), and
- started at or before the child, and is the latest such instance (a newer process with the
  same id replaced it: pid reuse; the copies of one GUID are told apart the same way), and
- had not ended before the child started (Sysmon 5 / Security 4689 of that instance).

Bad data cannot make it loop: a process is never its own parent, every walk keeps the
processes it has seen, and a record already on the path is not added again. A Sysmon 1 and a
4688 of the same process (same computer and id, within `SAME_PROCESS_SECONDS`) are one node.
A parent with no creation event in the logs is still shown from what its child says of it
(ParentImage, ParentCommandLine, ParentProcessId), marked as inferred.

The store gathers the candidate events (`store/process_events.py`); `services/processes.py`
feeds them here and shapes the answer.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import pairwise

#: A Sysmon 1 and a 4688 this close, with the same computer and process id, are one process.
SAME_PROCESS_SECONDS = 2.0
_EPOCH = datetime.min

EventRef = tuple[int, int]  # (file_id, seq)


class Source(StrEnum):
    SYSMON = "sysmon"
    SECURITY = "security"


def parse_pid(text: object) -> int | None:
    """A process id written as decimal (`1768`) or hex (`0x6e8`); None for 0 and nonsense."""
    value = str(text or "").strip().lower()
    try:
        pid = int(value, 16) if value.startswith("0x") else int(value)
    except ValueError:
        return None
    return pid if 0 < pid < 2**32 else None


def norm_guid(text: object) -> str:
    """A GUID without braces, upper case; "" for an empty or all-zero one."""
    value = str(text or "").strip().strip("{}").strip().upper()
    return value if value.strip("0-") else ""


@dataclass(frozen=True)
class ProcessRecord:
    """One process instance as its creation event tells it; `ref` None: no creation event
    was found, and what is known comes from another event (`ts` None: start unknown)."""

    ref: EventRef | None
    ts: datetime | None
    computer: str
    source: Source
    pid: int | None = None
    guid: str = ""
    parent_pid: int | None = None
    parent_guid: str = ""
    image: str = ""
    command_line: str = ""
    user: str = ""
    logon_id: str = ""
    parent_image: str = ""
    parent_command_line: str = ""
    #: The event a process without a creation event was seen in (for its node id).
    seen_in: EventRef | None = None

    @property
    def node_id(self) -> str:
        if self.ref is not None:
            return f"{self.ref[0]}:{self.ref[1]}"
        key = self.guid or f"pid{self.pid}"
        seen = f"@{self.seen_in[0]}:{self.seen_in[1]}" if self.seen_in else ""
        return f"~{self.computer}:{key}{seen}"

    @property
    def start(self) -> datetime:
        return self.ts or _EPOCH


@dataclass(frozen=True)
class ProcessEnd:
    """A process exit (Sysmon 5, Security 4689)."""

    ts: datetime
    computer: str
    pid: int | None = None
    guid: str = ""


Key = tuple[str, str]  # (computer, "g:GUID" or "p:PID")


def _keys(computer: str, guid: str, pid: int | None) -> list[Key]:
    keys = [(computer, f"g:{guid}")] if guid else []
    return [*keys, (computer, f"p:{pid}")] if pid is not None else keys


class ProcessPool:
    """Process records and exits, and the parent/child links between them.

    Add what the store found (`add`); links are recomputed on the next question. The same
    event added twice counts once.
    """

    def __init__(self) -> None:
        self._records: dict[str, ProcessRecord] = {}
        self._ends: set[ProcessEnd] = set()
        self._aliases: dict[EventRef, str] = {}
        self._stale = True
        self._starts: dict[Key, list[tuple[datetime, str]]] = {}
        self._exits: dict[Key, list[datetime]] = {}
        self._parent: dict[str, str | None] = {}
        self._children: dict[str, list[str]] = {}

    def add(self, records: Iterable[ProcessRecord], ends: Iterable[ProcessEnd] = ()) -> None:
        for record in records:
            self._records.setdefault(record.node_id, record)
        self._ends.update(ends)
        self._stale = True

    def __len__(self) -> int:
        self._refresh()
        return len(self._records)

    def get(self, node_id: str) -> ProcessRecord | None:
        self._refresh()
        return self._records.get(node_id)

    def resolve(self, ref: EventRef) -> ProcessRecord | None:
        """The node of a creation event (a 4688 merged into its Sysmon 1 gives that one)."""
        self._refresh()
        node_id = self._aliases.get(ref, f"{ref[0]}:{ref[1]}")
        return self._records.get(node_id)

    def instance(
        self, computer: str, guid: str, pid: int | None, at: datetime
    ) -> ProcessRecord | None:
        """The process with this GUID (else id) running on `computer` at `at`; by id, only
        one whose own GUID (if any) does not contradict `guid`."""
        self._refresh()
        for key in _keys(computer, guid, pid):
            found = self._latest(key, at, None)
            if found is not None and (not guid or found.guid in ("", guid)):
                return found
        return None

    def parent_of(self, record: ProcessRecord) -> ProcessRecord | None:
        self._refresh()
        parent = self._parent.get(record.node_id)
        return self._records[parent] if parent else None

    def children_of(self, record: ProcessRecord) -> list[ProcessRecord]:
        """Children in order of start."""
        self._refresh()
        return [self._records[c] for c in self._children.get(record.node_id, [])]

    def end_of(self, record: ProcessRecord) -> datetime | None:
        """When this instance exited, if an exit was logged before the next instance."""
        self._refresh()
        nxt = self.until(record, exits=False)
        best: datetime | None = None
        for key in _keys(record.computer, record.guid, record.pid):
            times = self._exits.get(key, [])
            i = bisect.bisect_left(times, record.start)
            if i < len(times) and (nxt is None or times[i] < nxt):
                best = times[i] if best is None else min(best, times[i])
        return best

    def until(self, record: ProcessRecord, *, exits: bool = True) -> datetime | None:
        """The end of this instance's lifetime: its exit, or the start of the next process
        with the same GUID or id on the computer; None when neither is known."""
        self._refresh()
        ends: list[datetime] = []
        for key in _keys(record.computer, record.guid, record.pid):
            starts = self._starts.get(key, [])
            i = bisect.bisect_right(starts, (record.start, "\U0010ffff"))
            if i < len(starts):
                ends.append(starts[i][0])
        if exits and (end := self.end_of(record)) is not None:
            ends.append(end)
        return min(ends) if ends else None

    def gap_around(self, computer: str, pid: int, at: datetime) -> tuple[datetime | None, ...]:
        """For a process known only by id at `at`: the last start or exit of that id before
        it, and the next start after it (None where there is none): its lifetime lies
        between them."""
        self._refresh()
        key = (computer, f"p:{pid}")
        starts = [t for t, _ in self._starts.get(key, []) if t != _EPOCH]
        before = [t for t in starts + self._exits.get(key, []) if t <= at]
        after = [t for t in starts if t > at]
        return (max(before) if before else None, min(after) if after else None)

    # ---------------------------------------------------------------- linking

    def _refresh(self) -> None:
        if not self._stale:
            return
        self._stale = False
        self._merge_duplicates()
        self._starts = {}
        for record in self._records.values():
            for key in _keys(record.computer, record.guid, record.pid):
                self._starts.setdefault(key, []).append((record.start, record.node_id))
        for starts in self._starts.values():
            starts.sort()
        self._exits = {}
        for end in self._ends:
            for key in _keys(end.computer, end.guid, end.pid):
                self._exits.setdefault(key, []).append(end.ts)
        for times in self._exits.values():
            times.sort()
        self._link()

    def _merge_duplicates(self) -> None:
        """Drop a 4688 that a Sysmon 1 of the same process already gives (keep an alias),
        after filling what the Sysmon 1 left empty from it (its parent's image, say)."""
        sysmon: dict[tuple[str, int], list[str]] = {}
        for node_id, record in self._records.items():
            if record.source is Source.SYSMON and record.pid is not None and record.ref:
                sysmon.setdefault((record.computer, record.pid), []).append(node_id)
        window = timedelta(seconds=SAME_PROCESS_SECONDS)
        for node_id, record in list(self._records.items()):
            if record.source is not Source.SECURITY or record.pid is None or not record.ref:
                continue
            for twin_id in sysmon.get((record.computer, record.pid), []):
                twin = self._records[twin_id]
                if abs(twin.start - record.start) <= window:
                    self._records[twin_id] = _filled(twin, record)
                    self._aliases[record.ref] = twin_id
                    del self._records[node_id]
                    break

    def _latest(self, key: Key, at: datetime, exclude: str | None) -> ProcessRecord | None:
        """The latest instance under `key` that started at or before `at` and had not
        exited before `at`."""
        starts = self._starts.get(key, [])
        i = bisect.bisect_right(starts, (at, "\U0010ffff"))
        while i > 0:
            i -= 1
            node_id = starts[i][1]
            if node_id == exclude:
                continue
            record = self._records[node_id]
            if key[1].startswith("p:") and record.ts is None:
                return None  # a process id of unknown start cannot be placed in time
            exits = self._exits.get(key, [])
            j = bisect.bisect_left(exits, record.start)
            if j < len(exits) and exits[j] < at:
                return None  # that instance had ended: the parent is not in the logs
            return record
        return None

    def _find_parent(self, record: ProcessRecord) -> ProcessRecord | None:
        at = record.start
        if record.parent_guid:
            found = self._latest((record.computer, f"g:{record.parent_guid}"), at, record.node_id)
            if found is not None:
                return found
        if record.parent_pid is None:
            return None
        found = self._latest((record.computer, f"p:{record.parent_pid}"), at, record.node_id)
        if found is not None and record.parent_guid and found.guid not in ("", record.parent_guid):
            return None  # that id belonged to another process than the one the child names
        return found

    def _link(self) -> None:
        self._parent = {}
        self._children = {}
        for node_id, record in self._records.items():
            parent = self._find_parent(record)
            self._parent[node_id] = parent.node_id if parent else None
            if parent is not None:
                self._children.setdefault(parent.node_id, []).append(node_id)
        for kids in self._children.values():
            kids.sort(key=lambda n: (self._records[n].start, n))


_FILLABLE = ("image", "command_line", "user", "logon_id", "parent_image", "parent_command_line")


def _filled(record: ProcessRecord, other: ProcessRecord) -> ProcessRecord:
    """`record` with its empty text fields taken from `other` (the same process)."""
    missing = {f: getattr(other, f) for f in _FILLABLE if not getattr(record, f)}
    return replace(record, **{f: v for f, v in missing.items() if v})


def inferred_parent(record: ProcessRecord) -> ProcessRecord | None:
    """The parent as the child describes it, when its creation event is not in the logs."""
    if not (record.parent_image or record.parent_guid or record.parent_pid is not None):
        return None
    return ProcessRecord(
        ref=None,
        ts=None,
        computer=record.computer,
        source=record.source,
        pid=record.parent_pid,
        guid=record.parent_guid,
        image=record.parent_image,
        command_line=record.parent_command_line,
        seen_in=record.ref or record.seen_in,
    )


# ---------------------------------------------------------------- the tree


@dataclass(frozen=True)
class TreeLimits:
    """How much of a tree one answer holds (the rest is a link away)."""

    ancestors: int = 32
    depth: int = 4
    nodes: int = 300


@dataclass
class TreeNode:
    process: ProcessRecord
    ended: datetime | None = None
    children: list[TreeNode] = field(default_factory=list)
    #: Children known but not shown (the node budget ran out, or the depth limit).
    more_children: int = 0
    focus: bool = False

    @property
    def inferred(self) -> bool:
        return self.process.ref is None


@dataclass
class ProcessTree:
    root: TreeNode
    focus: TreeNode
    nodes: int
    #: More ancestors than the limit: the root shown is not the topmost known one.
    ancestors_cut: bool = False
    #: Bad data: a process named an ancestor as its descendant; the loop was cut there.
    cycle: bool = False


def _lineage(pool: ProcessPool, focus: ProcessRecord, most: int) -> tuple[list, bool, bool]:
    """Focus first, then each parent, at most `most` of them; whether more were left out,
    and whether the walk stopped at a loop."""
    chain = [focus]
    seen = {focus.node_id}
    while True:
        parent = pool.parent_of(chain[-1]) or inferred_parent(chain[-1])
        if parent is None:
            return chain, False, False
        if parent.node_id in seen:
            return chain, False, parent.ref is not None
        if len(chain) > most:
            return chain, True, False
        chain.append(parent)
        seen.add(parent.node_id)
        if parent.ref is None:  # inferred: nothing is known above it
            return chain, False, False


def build_tree(pool: ProcessPool, focus: ProcessRecord, limits: TreeLimits) -> ProcessTree:
    """The focus's ancestors (a single line up to the root) and its descendants, breadth
    first, within `limits`: deeper than `limits.depth` or past `limits.nodes` nodes a node
    only counts what it does not show (`more_children`)."""
    chain, cut, cycle = _lineage(pool, focus, limits.ancestors)
    seen = {r.node_id for r in chain}
    nodes = [TreeNode(r, pool.end_of(r) if r.ref else None) for r in chain]
    nodes[0].focus = True
    for child, parent in pairwise(nodes):
        parent.children.append(child)
    shown = len(nodes)
    queue: deque[tuple[TreeNode, int]] = deque([(nodes[0], 0)])
    while queue:
        node, depth = queue.popleft()
        for kid in pool.children_of(node.process):
            if kid.node_id in seen:
                cycle = True
                continue
            if depth >= limits.depth or shown >= limits.nodes:
                node.more_children += 1
                continue
            seen.add(kid.node_id)
            shown += 1
            child = TreeNode(kid, pool.end_of(kid))
            node.children.append(child)
            queue.append((child, depth + 1))
    return ProcessTree(nodes[-1], nodes[0], shown, cut, cycle)

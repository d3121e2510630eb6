"""What a worker knows while it takes files through their steps: its context, the facts of
the file at hand (`file_info`, with a segment a `full` job can re-use), and the protocols of
the analyzers that see every batch (pipeline.py runs the steps).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import pyarrow as pa
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from casescope.config import Settings
from casescope.detect.active import ActiveRules
from casescope.detect.exclusions import ExclusionSet
from casescope.errors import PermanentError
from casescope.evidence.store import sha256_of
from casescope.hunt.matcher import IocMatcher
from casescope.model.db import Database
from casescope.model.enums import FileStatus, FileType, Operation
from casescope.model.tables import EvidenceFile, Segment
from casescope.parse.schema import PARSER_VERSION
from casescope.store.segments import segment_variant
from casescope.workqueue import queue
from casescope.workqueue.slices import ClaimedSlice


class Consumer(Protocol):
    """Sees every batch of a file as it is read."""

    @property
    def wants_events(self) -> bool:
        """False when re-reading the segment would be for nothing (no rules/IOCs to run)."""
        ...

    def consume(self, batch: pa.RecordBatch) -> None: ...
    def finish(self) -> None:
        """Called after the last batch (consumers may buffer batches)."""
        ...


A = TypeVar("A")


@dataclass(frozen=True)
class GroupPart(Generic[A]):
    """One file's analyzer in a group's evaluation, its events, and its rows
    `start..stop` of the group's combined batch (jobs/group.py)."""

    analyzer: A
    events: pa.RecordBatch
    start: int
    stop: int


class Analyzer(Consumer, Protocol):
    """A consumer that persists its findings in its own step."""

    status: FileStatus

    def persist(self, session: Session, file_id: int) -> int: ...

    def persist_range(self, session: Session, file_id: int, case_id: int, seqs: range) -> int:
        """Replace the file's findings on events `seqs` (a slice's: jobs/slices.py)."""
        ...

    def fresh(self) -> Analyzer:
        """An analyzer like this one that has found nothing yet."""
        ...

    @classmethod
    def persist_many(cls, session: Session, items: Sequence[tuple[Any, int, int]]) -> list[int]:
        """`persist` of several (analyzer, file id, case id) at once; the rows per file."""
        ...

    @property
    def shared(self) -> object:
        """Analyzers with the same `shared` object find hits alike (jobs/group.py)."""
        ...

    def find(self, batch: pa.RecordBatch) -> pa.Table:
        """The hits in `batch`, with its `seq`, ordered by seq."""
        ...

    def add_hits(self, batch: pa.RecordBatch, hits: pa.Table) -> None:
        """Keep `hits` found in `batch` for `persist`."""
        ...

    @staticmethod
    def add_group_hits(combined: pa.RecordBatch, hits: pa.Table, parts: Sequence[Any]) -> None:
        """`add_hits` for the files of a group: `hits` (ordered by seq) were found in
        `combined`, whose `seq` is the row; each of `parts` (`GroupPart`) takes its rows
        with its own `seq`."""
        ...


@dataclass
class Progress:
    """Shared with the worker's heartbeat thread, which reports it to the DB."""

    events: int = 0


@dataclass
class WorkerContext:
    settings: Settings
    db: Database
    worker_id: str
    progress: Progress = field(default_factory=Progress)
    rules: ActiveRules | None = None  # the compiled Sigma set this worker has loaded
    #: Asked by `_complete`: how many files to claim in the transaction that completes
    #: these (0: none; the worker is about to be recycled).
    claim_next: Callable[[], int] = lambda: 0
    #: The jobs claimed that way (the worker runs them next).
    next_jobs: list[queue.ClaimedJob] = field(default_factory=list)
    #: Every job this worker holds now (the heartbeat renews their leases) and the one whose
    #: file it is reading (reported for the pool's time and memory bounds).
    claimed: list[queue.ClaimedJob] = field(default_factory=list)
    current: queue.ClaimedJob | None = None
    current_started: float | None = None
    #: The slice of a large file this worker parses now (its heartbeat renews the lease).
    slice: ClaimedSlice | None = None
    #: Compiled IOC matchers by (case id, IOC-set hash): small files must not recompile.
    ioc_matchers: dict[tuple[int, str], IocMatcher] = field(default_factory=dict)
    exclusion_sets: dict[tuple[int, str], ExclusionSet] = field(default_factory=dict)


@dataclass(frozen=True)
class ReusableSegment:
    """A segment already parsed from the same bytes (a `full` job re-uses it)."""

    id: int
    path: Path
    event_count: int


@dataclass(frozen=True)
class FileInfo:
    id: int
    case_id: int
    sha256: str
    stored_path: Path
    file_type: FileType
    segment_id: int | None
    field_map: dict[str, str]
    reuse: ReusableSegment | None = None

    @property
    def variant(self) -> str:
        return segment_variant(self.field_map)


_FILES = EvidenceFile.__table__
_SEGMENTS = Segment.__table__
_FILE_INFOS = select(
    _FILES.c.id,
    _FILES.c.case_id,
    _FILES.c.sha256,
    _FILES.c.stored_path,
    _FILES.c.file_type,
    _FILES.c.segment_id,
    _FILES.c.field_map,
).where(_FILES.c.id.in_(bindparam("file_ids", expanding=True)))
_SEGMENTS_OF = select(
    _SEGMENTS.c.id,
    _SEGMENTS.c.sha256,
    _SEGMENTS.c.variant,
    _SEGMENTS.c.path,
    _SEGMENTS.c.event_count,
).where(
    _SEGMENTS.c.sha256.in_(bindparam("sha256s", expanding=True)),
    _SEGMENTS.c.parser_version == PARSER_VERSION,
)


def file_info(session: Session, file_id: int, operation: Operation) -> FileInfo:
    """What processing needs to know of a file (and, for `full`, a segment to re-use)."""
    found = file_infos(session, [file_id], {file_id: operation})
    if file_id not in found:
        raise PermanentError(f"file {file_id} no longer exists")
    return found[file_id]


def file_infos(
    session: Session, file_ids: Sequence[int], operations: dict[int, Operation]
) -> dict[int, FileInfo]:
    """`file_info` of several files in two queries, by file id (a file that no longer
    exists is left out): a group of small files must not pay two queries per file."""
    rows = session.execute(_FILE_INFOS, {"file_ids": list(file_ids)}).all()
    infos = {
        row.id: FileInfo(
            row.id,
            row.case_id,
            row.sha256,
            Path(row.stored_path),
            row.file_type,
            row.segment_id,
            json.loads(row.field_map) if row.field_map else {},
        )
        for row in rows
    }
    full = [info for info in infos.values() if operations[info.id] is Operation.FULL]
    if not full:
        return infos
    segments = session.execute(_SEGMENTS_OF, {"sha256s": sorted({i.sha256 for i in full})})
    by_key = {(seg.sha256, seg.variant): seg for seg in segments}
    for info in full:
        seg = by_key.get((info.sha256, info.variant))
        if seg is not None and Path(seg.path).exists():
            reuse = ReusableSegment(seg.id, Path(seg.path), seg.event_count)
            infos[info.id] = replace(info, reuse=reuse)
    return infos


def check_evidence(info: FileInfo, operation: Operation) -> None:
    """The evidence copy is there and, before a `reindex` reads it again, still holds the
    bytes hashed at intake: events are never re-read from a copy altered since."""
    if not info.stored_path.is_file():
        raise PermanentError(f"evidence file is missing: {info.stored_path}")
    if operation is not Operation.REINDEX:
        return
    found = sha256_of(info.stored_path)
    if found != info.sha256:
        raise PermanentError(
            f"evidence file changed since it was taken in: {info.stored_path} has sha256 "
            f"{found}, {info.sha256} was recorded; its events were not read again (the index "
            "keeps those read before); take in the original evidence again"
        )

"""The events phase: each file's evidence copied with its sha256 checked, its segment
copied, and the file registered as pending on the target, whose loader re-derives the
index rows from the segment (never rows read out of the source's index).

Files go in batches, each ended by one flush of the copies to disk, a load and then its
checkpoint: a run killed before the checkpoint copies that batch again (copies are replaced
whole, by rename; one already there with its sha256 is kept) and the loader deletes whatever
rows of a pending file the index already holds, so nothing is doubled. Within a batch,
`jobs` threads copy and hash the files (file reads and hashlib release the GIL); the batch
waits for all of them before its flush, load and checkpoint, so the boundaries a resumed
run meets are the same whatever the number of threads. The target's index is opened once
for the phase (opening chDB per batch cost more than the copies).
A file whose evidence is missing or changed on the source is reported, recorded in the
checkpoint's problems and left unloaded; the other files go on.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select, update

from casescope.migrate.checkpoints import (
    EVIDENCE,
    Where,
    add_problems,
    advance,
    checkpoint,
    finish,
    last_key,
)
from casescope.migrate.endpoints import Source
from casescope.migrate.keys import KeyMap
from casescope.migrate.phases import Phase, relative_path
from casescope.model.db import Database
from casescope.model.enums import IndexState
from casescope.model.tables import EvidenceFile, Segment
from casescope.store.index import EventIndex
from casescope.store.loader import load_pending
from casescope.store.owner import open_index
from casescope.store.segments import sync_to_disk

logger = logging.getLogger(__name__)

DEFAULT_BATCH_FILES = 200
CHUNK = 1 << 20
#: Threads copying and hashing files in the events phase: the cores, at most 4 (one disk
#: behind them all); bench/migrate.py --jobs N measures another count.
DEFAULT_JOBS = min(4, os.cpu_count() or 1)


@dataclass(frozen=True)
class SourceFile:
    id: int
    case_id: int
    sha256: str
    size_bytes: int
    original_path: str
    stored_path: str
    loaded: bool  # its events are in the source's index
    segment_path: str | None


@dataclass
class EventsReport:
    files: int = 0
    bytes: int = 0
    rows: int = 0
    problems: list[dict] = field(default_factory=list)


def source_files(source: Source, case_id: int, after: object, limit: int) -> list[SourceFile]:
    query = (
        select(
            EvidenceFile.id,
            EvidenceFile.sha256,
            EvidenceFile.size_bytes,
            EvidenceFile.original_path,
            EvidenceFile.stored_path,
            EvidenceFile.index_state,
            Segment.path,
        )
        .outerjoin(Segment, Segment.id == EvidenceFile.segment_id)
        .where(EvidenceFile.case_id == case_id)
        .order_by(EvidenceFile.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(EvidenceFile.id > after)
    with source.engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        SourceFile(
            r[0], case_id, r[1], r[2], r[3], r[4], IndexState(r[5]) is IndexState.LOADED, r[6]
        )
        for r in rows
    ]


def target_path(value: str, source_home: Path, target_home: Path) -> Path | None:
    """Where a file under the source's home goes; None for one outside it."""
    relative = relative_path(value, source_home)
    if relative is None or Path(relative).is_absolute():
        return None
    return target_home / relative


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def copy_verified(source: Path, target: Path, sha256: str) -> str | None:
    """Copy `source` to `target` (whole, by rename) if it has `sha256`; why not, or None.
    Not flushed to disk here: the batch is, at once, before its checkpoint."""
    if target.is_file() and _sha256(target) == sha256:
        return None
    if not source.is_file():
        return "evidence missing on the source"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.migrating")
    digest = hashlib.sha256()
    with source.open("rb") as src, tmp.open("wb") as out:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != sha256:
        tmp.unlink()
        return f"evidence changed on the source: sha256 {digest.hexdigest()}, registered {sha256}"
    tmp.replace(target)
    return None


class _PathLocks:
    """One lock per target path: two files of a batch may name the same segment (segments
    are shared by content), and its copy goes through one temporary name."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Path, threading.Lock] = {}

    @contextlib.contextmanager
    def held(self, path: Path) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(path, threading.Lock())
        with lock:
            yield


def copy_segment(source: Path, target: Path) -> int:
    """Copy a segment (a file, or a folder of pieces) unless the target has it; its bytes.
    Segments are immutable and named by content, so one that is there is the same. Not
    for two threads at once on one target (`_PathLocks`)."""
    if target.exists():
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.migrating")
    if tmp.is_dir():  # left by a run killed while it copied
        shutil.rmtree(tmp)
    else:
        tmp.unlink(missing_ok=True)
    if source.is_dir():
        shutil.copytree(source, tmp)
        size = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
    else:
        shutil.copyfile(source, tmp)
        size = tmp.stat().st_size
    tmp.replace(target)
    return size


@dataclass
class EventsContext:
    source: Source
    target: Database
    source_id: str
    case_ids: list[int]
    batch_files: int = DEFAULT_BATCH_FILES
    #: Told (files, bytes) after each file.
    on_file: Callable[[int, int], None] | None = None
    #: Load the copied files' segments into the target's index. A case bundle's home has
    #: no index: its files are marked loaded instead (their segments hold their events),
    #: so that the deployment the bundle is imported into loads them.
    load: bool = True
    #: New keys on the target (`migrate.keys`); None: keys are kept.
    keymap: KeyMap | None = None
    #: Threads copying a batch's files (1: in this thread).
    jobs: int = DEFAULT_JOBS
    #: The target's index when the caller holds it open (the web server owns its embedded
    #: index: a case imported through it loads there); None: opened for the phase.
    index: EventIndex | None = None
    #: The segments being copied, one lock each: the phase's only (so they end with it).
    segment_locks: _PathLocks = field(default_factory=_PathLocks)

    def evidence_target(self, item: SourceFile) -> Path | None:
        """Where the file's evidence goes on the target (None: outside the source home)."""
        target_home = self.target.settings.home_dir
        if self.keymap is not None:
            case_id = self.keymap.key("cases", item.case_id)
            return self.keymap.evidence_path(case_id or 0, item.sha256, target_home)
        return target_path(item.stored_path, self.source.home, target_home)

    def file_key(self, item: SourceFile) -> int:
        return item.id if self.keymap is None else self.keymap.key("evidence_files", item.id) or 0


@dataclass(frozen=True)
class Copied:
    """One file's copy: load its segment, bytes copied, the problem met, paths written."""

    load: bool
    size: int
    problem: dict | None = None
    written: tuple[Path, ...] = ()


def _problem(item: SourceFile, reason: str) -> dict:
    logger.warning("file %d (%s): %s", item.id, item.original_path, reason)
    return {"file_id": item.id, "path": item.original_path, "reason": reason}


def _copy_file(ctx: EventsContext, item: SourceFile) -> Copied:
    """Copy one file's evidence and segment (in any thread: it touches no database)."""
    source_home, target_home = ctx.source.home, ctx.target.settings.home_dir
    evidence = ctx.evidence_target(item)
    if evidence is None:
        reason: str | None = "evidence stored outside the source home"
    else:
        try:
            reason = copy_verified(Path(item.stored_path), evidence, item.sha256)
        except OSError as exc:
            reason = f"evidence could not be copied: {exc}"
    if reason is not None or evidence is None:
        return Copied(False, 0, _problem(item, reason or ""))
    if not (item.loaded and item.segment_path is not None):
        return Copied(False, item.size_bytes, written=(evidence,))
    segment = target_path(item.segment_path, source_home, target_home)
    try:
        if segment is None:
            raise FileNotFoundError(item.segment_path)
        with ctx.segment_locks.held(segment):
            size = copy_segment(Path(item.segment_path), segment)
    except OSError as exc:
        reason = f"segment missing or unreadable on the source ({exc}): evidence copied, "
        reason += "events not loaded"
        return Copied(False, item.size_bytes, _problem(item, reason), (evidence,))
    return Copied(True, item.size_bytes + size, written=(evidence, segment))


def _copy_files(
    ctx: EventsContext, batch: list[SourceFile], pool: Executor | None
) -> Iterator[Copied]:
    """The batch's copies, in its order (with a pool, made by its threads meanwhile)."""
    if pool is None:
        return (_copy_file(ctx, item) for item in batch)
    return pool.map(lambda item: _copy_file(ctx, item), batch)


def _mark(db: Database, file_ids: list[int], state: IndexState) -> None:
    if file_ids:
        with db.session() as session:
            session.execute(
                update(EvidenceFile)
                .where(EvidenceFile.id.in_(file_ids))
                .values(index_state=state, index_generation=EvidenceFile.index_generation + 1)
            )


@dataclass
class _Phase:
    """What the batches of the phase share: the target's index, the copying threads."""

    index: EventIndex | None
    pool: Executor | None
    report: EventsReport


def _copy_batch(ctx: EventsContext, where: Where, phase: _Phase) -> bool:
    """Copy, register and load the next batch of a case's files; False when none were left."""
    with ctx.target.session() as session:
        after = last_key(checkpoint(session, where))
    batch = source_files(ctx.source, where.unit, after, ctx.batch_files)
    if not batch:
        return False
    pending, problems, size, written = [], [], 0, []
    for item, copied in zip(batch, _copy_files(ctx, batch, phase.pool), strict=True):
        size += copied.size
        written += copied.written
        if copied.problem is not None:
            problems.append(copied.problem)
        elif copied.load:
            pending.append(ctx.file_key(item))
        if ctx.on_file is not None:
            ctx.on_file(1, copied.size)
    settings, report = ctx.target.settings, phase.report
    sync_to_disk([p for p in written if p.exists()])  # one flush, before the batch is named
    if phase.index is not None:
        _mark(ctx.target, pending, IndexState.PENDING)
        report.rows += load_pending(ctx.target, phase.index, settings).rows
    else:
        _mark(ctx.target, pending, IndexState.LOADED)
    with ctx.target.session() as session:
        mark = checkpoint(session, where)
        advance(mark, batch[-1].id, len(batch), size)
        add_problems(mark, problems)
    report.files += len(batch)
    report.bytes += size
    report.problems += problems
    return True


def copy_events(ctx: EventsContext) -> EventsReport:
    report = EventsReport()
    settings = ctx.target.settings
    settings.ensure_dirs()
    with contextlib.ExitStack() as stack:
        index = None
        if ctx.load:
            index = ctx.index or stack.enter_context(open_index(settings, "migrate"))
        pool = None
        if ctx.jobs > 1:
            pool = stack.enter_context(ThreadPoolExecutor(ctx.jobs, "migrate-copy"))
        phase = _Phase(index, pool, report)
        for case_id in ctx.case_ids:
            where = Where(ctx.source_id, Phase.EVENTS, EVIDENCE, case_id)
            while _copy_batch(ctx, where, phase):
                pass
            finish(ctx.target, where)
    return report

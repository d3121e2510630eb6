"""The index owner's loader: moves ready segments into the event index in large batches.

Workers finish a file by marking it `index_state = pending` (with a new `index_generation`).
The owner picks pending files in batches of many files (one INSERT per batch, never one per
file), first deleting any rows the index already holds for them — left by a reindex, or by an
owner that died between its INSERT and its bookkeeping — so a file's rows exist exactly once.

An INSERT holds at most `rows_per_insert` events and, as far as the segments' Parquet
metadata says, LOAD_INSERT_BYTES of them (memory grows with the rows and the bytes of one
INSERT: docs/decisions.md, "Wide events"); a larger segment is inserted alone in `seq`
slices. Its file stays pending until the last slice is in, so an owner killed between slices
leaves a partial file that the next owner deletes and loads again.

One file never blocks the others: when a batch fails, its files are loaded one by one, and a
file that fails alone is failed with the reason (store/load_failures.py) instead of failing
every later load, and with it every command that opens the index.

A large file's events are loaded during its parse, in the pieces its worker publishes
(store/pieces.py): each call loads the pieces ready first, and a completed file whose pieces
hold all its events is only marked loaded.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
from sqlalchemy import bindparam, select, update

from casescope.config import Settings
from casescope.errors import IndexUnavailableError
from casescope.model.db import Database
from casescope.model.enums import IndexState
from casescope.model.tables import EvidenceFile, Segment
from casescope.store.chdb_memory import insert_rows_for
from casescope.store.load_claims import ClaimRound, LoadClaims, load_claims
from casescope.store.load_failures import LOAD_ERRORS, fail_load
from casescope.store.load_item import LoadItem
from casescope.store.pieces import (
    PIECE_INSERT_BYTES,
    drop_abandoned,
    forget_pieces,
    fully_loaded,
    load_ready_pieces,
    orphan_piece_dirs,
)
from casescope.store.segments import insert_slices, segment_data_bytes

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

logger = logging.getLogger(__name__)

MAX_PENDING_PER_CALL = 20_000
#: The events one INSERT holds, in uncompressed bytes: one part's worth, as for load pieces
#: (an INSERT's memory follows its bytes, not only its rows: docs/decisions.md, "Wide events").
LOAD_INSERT_BYTES = PIECE_INSERT_BYTES
#: Segments of evidence files at least this large are measured (their Parquet metadata is
#: read) before they are batched; smaller ones cannot hold much, and small files are many.
MEASURE_FROM_BYTES = 1 << 20


@dataclass(frozen=True)
class PendingFile:
    file_id: int
    case_id: int
    generation: int
    segment_path: Path
    event_count: int
    bundle: Path | None = None  # a group's load bundle holding its events (jobs/group.py)
    #: Its events are in the index already: its pieces were loaded during its parse.
    pieced: bool = False
    size_bytes: int = 0  # of the evidence file
    #: Uncompressed bytes of its events, from its segment's metadata (None: not measured).
    data_bytes: int | None = None


@dataclass
class LoadReport:
    files: int = 0
    rows: int = 0
    batches: int = 0
    seconds: float = 0.0
    failed: int = 0  # files failed because their events could not be loaded


def _pending_files(db: Database, limit: int) -> list[PendingFile]:
    with db.read() as session:
        rows = session.execute(
            select(
                EvidenceFile.id,
                EvidenceFile.case_id,
                EvidenceFile.index_generation,
                Segment.path,
                Segment.event_count,
                EvidenceFile.load_bundle,
                EvidenceFile.size_bytes,
            )
            .join(Segment, Segment.id == EvidenceFile.segment_id)
            .where(EvidenceFile.index_state == IndexState.PENDING)
            .order_by(EvidenceFile.id)
            .limit(limit)
        ).all()
    return [
        PendingFile(
            r[0], r[1], r[2], Path(r[3]), r[4], Path(r[5]) if r[5] else None, size_bytes=r[6]
        )
        for r in rows
    ]


def _measured(pending: list[PendingFile]) -> list[PendingFile]:
    """`pending`, with the data bytes of the unbundled files of MEASURE_FROM_BYTES or more
    (a segment that cannot be read stays unmeasured: its load fails, for that file alone)."""
    measured = []
    for item in pending:
        if not item.pieced and item.bundle is None and item.size_bytes >= MEASURE_FROM_BYTES:
            try:
                item = replace(item, data_bytes=segment_data_bytes(item.segment_path))
            except LOAD_ERRORS as error:
                logger.debug("segment of file %d not measured: %s", item.file_id, error)
        measured.append(item)
    return measured


#: Below this many rows per INSERT the owner first trims its memory (`EventIndex.trim_memory`).
TRIM_BELOW_ROWS = 100_000


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def rows_per_insert(settings: Settings, rss_mb: float | None = None) -> int:
    """The most events one INSERT holds: `load_batch_rows`, or fewer if that would take the
    owner (now at `rss_mb`, default: measured) past `index_memory_mb`."""
    if rss_mb is None:
        rss_mb = _rss_mb()
    return min(settings.load_batch_rows, insert_rows_for(settings.index_memory_mb, rss_mb))


def _insert_limit(settings: Settings, index: EventIndex) -> int:
    """`rows_per_insert`, after trimming the owner's memory if it leaves little room."""
    limit = rows_per_insert(settings)
    if limit < min(TRIM_BELOW_ROWS, settings.load_batch_rows):
        before = _rss_mb()
        index.trim_memory()
        limit = rows_per_insert(settings)
        logger.debug("index owner trimmed from %.0f MB: %d rows per INSERT", before, limit)
    return limit


def _take_batch(pending: list[PendingFile], settings: Settings, limit: int) -> list[PendingFile]:
    """Up to the file, row and byte limits, never the same segment twice in one INSERT (a
    file over the row or byte limit makes a batch of its own)."""
    batch: list[PendingFile] = []
    seen: set[Path] = set()
    rows = size = 0
    for item in pending:
        if item.segment_path in seen:
            continue
        events = 0 if item.pieced else item.event_count
        data = 0 if item.pieced else item.data_bytes or 0
        if batch and (rows + events > limit or size + data > LOAD_INSERT_BYTES):
            break
        batch.append(item)
        seen.add(item.segment_path)
        rows += events
        size += data
        if len(batch) >= settings.load_batch_files:
            break
    return batch


_FILES = EvidenceFile.__table__
_MARK_LOADED = (
    update(_FILES)
    .where(
        _FILES.c.id == bindparam("file_id"),
        _FILES.c.index_generation == bindparam("generation"),
        _FILES.c.index_state == IndexState.PENDING,
    )
    .values(index_state=IndexState.LOADED, load_claimant=None)
)


def _mark_loaded(db: Database, batch: list[PendingFile]) -> None:
    """One statement for the whole batch (executemany), not one ORM update per file; the
    files' load pieces go in the same transaction."""
    if not batch:
        return
    params = [{"file_id": item.file_id, "generation": item.generation} for item in batch]
    with db.session() as session:
        session.execute(_MARK_LOADED, params)
        forget_pieces(session, [item.file_id for item in batch])


def _slices(item: PendingFile, limit: int) -> list[tuple[int, int]]:
    """`seq` ranges of at most `limit` events and about LOAD_INSERT_BYTES each."""
    slices = []
    for first, end in insert_slices(item.segment_path, item.event_count, LOAD_INSERT_BYTES):
        slices += [(start, min(start + limit, end)) for start in range(first, end, limit)]
    return slices


def _load_sliced(index: EventIndex, item: PendingFile, limit: int) -> None:
    """Insert one large segment in slices (`_slices`; the last one open-ended)."""
    slices = _slices(item, limit)
    for n, (start, end) in enumerate(slices):
        last = n == len(slices) - 1
        index.load(
            [LoadItem(item.case_id, item.file_id, item.segment_path, start, None if last else end)]
        )
        logger.info("loaded events %d-%s of file %d", start, "end" if last else end, item.file_id)


def _alone(item: PendingFile, limit: int) -> bool:
    """Whether a file is loaded alone, in slices: over the row or the byte limit."""
    return item.event_count > limit or (item.data_bytes or 0) > LOAD_INSERT_BYTES


def _load_item(item: PendingFile) -> LoadItem:
    return LoadItem(item.case_id, item.file_id, item.segment_path)


def _load_bundled(index: EventIndex, items: list[PendingFile]) -> list[PendingFile]:
    """Load the files whose group bundle is there in one INSERT; the files left to load
    from their own segments (no bundle, a bundle gone, or one that could not be read)."""
    bundles: dict[Path, list[PendingFile]] = {}
    alone: list[PendingFile] = []
    for item in items:
        if item.bundle is not None and item.bundle.is_file():
            bundles.setdefault(item.bundle, []).append(item)
        else:
            alone.append(item)
    if not bundles:
        return alone
    grouped = {path: [_load_item(i) for i in group] for path, group in bundles.items()}
    try:
        index.load_bundles(grouped)
    except (RuntimeError, OSError) as error:  # a damaged bundle: the segments are the truth
        logger.warning("load bundles failed (%s); loading their files' segments", error)
        index.remove_partial([i for group in grouped.values() for i in group])
        return alone + [i for group in bundles.values() for i in group]
    return alone


def _with_pieces(db: Database, pending: list[PendingFile]) -> list[PendingFile]:
    """`pending`, with the files whose pieces hold all their events marked `pieced`."""
    done = fully_loaded(db, {item.file_id: item.event_count for item in pending})
    return [replace(item, pieced=True) if item.file_id in done else item for item in pending]


def prune_piece_dirs(db: Database, settings: Settings) -> int:
    """Delete `orphan_piece_dirs`; how many."""
    orphans = orphan_piece_dirs(db, settings)
    for path in orphans:
        shutil.rmtree(path, ignore_errors=True)
    return len(orphans)


def orphan_bundles(db: Database, settings: Settings) -> list[Path]:
    """Load bundles no pending file refers to: loaded already, or left by a worker that died
    before committing its group."""
    directory = settings.bundles_dir
    if not directory.is_dir():
        return []
    with db.read() as session:
        wanted = set(
            session.scalars(
                select(EvidenceFile.load_bundle).where(
                    EvidenceFile.index_state == IndexState.PENDING,
                    EvidenceFile.load_bundle.is_not(None),
                )
            )
        )
    return [path for path in directory.glob("*.parquet") if str(path) not in wanted]


def prune_bundles(db: Database, settings: Settings) -> int:
    """Delete `orphan_bundles`; how many. Always safe: a file whose bundle is gone is loaded
    from its segment."""
    orphans = orphan_bundles(db, settings)
    for path in orphans:
        path.unlink(missing_ok=True)
    return len(orphans)


def load_batch(
    db: Database, index: EventIndex, batch: list[PendingFile], limit: int | None = None
) -> int:
    """Load one batch (segments over `limit` events in slices; files loaded in pieces
    already are only marked loaded); returns rows inserted."""
    fresh = [item for item in batch if not item.pieced]
    present = index.files_present([item.file_id for item in fresh])
    if present:
        logger.info("replacing index rows of %d files", len(present))
        index.delete_files(sorted(present))
    limit = limit or max((item.event_count for item in fresh), default=0)
    whole = [item for item in fresh if item.event_count > 0 and not _alone(item, limit)]
    index.load([_load_item(item) for item in _load_bundled(index, whole)])
    for item in fresh:
        if _alone(item, limit):
            _load_sliced(index, item, limit)
    _mark_loaded(db, batch)
    return sum(item.event_count for item in fresh)


def _load_isolated(
    db: Database,
    index: EventIndex,
    batch: list[PendingFile],
    limit: int,
    settings: Settings,
    report: LoadReport,
) -> None:
    """`load_batch`; if it fails, the batch's files one by one, and a file that fails
    alone is failed (`fail_load`), so that the others, and later loads, go on."""
    try:
        report.rows += load_batch(db, index, batch, limit)
        report.files += len(batch)
        return
    except IndexUnavailableError:
        raise  # the server, not a file: the files stay pending for the next load
    except LOAD_ERRORS as error:
        if len(batch) == 1:
            item = batch[0]
            memory_mb = settings.index_memory_mb
            report.failed += fail_load(db, index, item.file_id, item.generation, error, memory_mb)
            return
        logger.warning("loading %d files failed (%s); loading them one by one", len(batch), error)
    for item in batch:
        _load_isolated(db, index, [item], limit, settings, report)


class Unclaimed:
    """The files an index's only loader loads (its owner): all of them, without claims."""

    def take(self, file_ids: Sequence[int]) -> set[int]:
        return set(file_ids)


@contextmanager
def _claimed(claims: LoadClaims | None, index: EventIndex) -> Iterator[ClaimRound | Unclaimed]:
    if claims is None:
        yield Unclaimed()
        return
    with claims.round(index) as taken:
        yield taken


def load_pending(db: Database, index: EventIndex, settings: Settings) -> LoadReport:
    """Load the segments pending now (not those that finish meanwhile: they wait for the
    next call, so a busy ingest makes few large INSERTs rather than many small ones). An
    index other processes load into too is loaded in claim rounds of `load_batch_files`
    files (store/load_claims.py): files another live process has claimed are left to it."""
    if not index.shared_by_processes:
        return _load_pending(db, index, settings, None)
    with load_claims(db) as claims:
        return _load_pending(db, index, settings, claims)


def _still_pending(db: Database, batch: list[PendingFile]) -> list[PendingFile]:
    """Of `batch`, listed before it was claimed, the files still pending in the same
    generation (another loader may have loaded one in between)."""
    if not batch:
        return []
    with db.read() as session:
        current = set(
            session.execute(
                select(EvidenceFile.id, EvidenceFile.index_generation).where(
                    EvidenceFile.id.in_([item.file_id for item in batch]),
                    EvidenceFile.index_state == IndexState.PENDING,
                )
            ).tuples()
        )
    return [item for item in batch if (item.file_id, item.generation) in current]


def _load_files(
    db: Database,
    index: EventIndex,
    settings: Settings,
    pending: list[PendingFile],
    report: LoadReport,
) -> None:
    """Load `pending` in batches under the row, byte and file limits."""
    while pending:
        limit = _insert_limit(settings, index)
        batch = _take_batch(pending, settings, limit)
        taken = {item.file_id for item in batch}
        pending = [item for item in pending if item.file_id not in taken]
        _load_isolated(db, index, batch, limit, settings, report)
        report.batches += 1


def _load_claimed(
    db: Database,
    index: EventIndex,
    settings: Settings,
    pending: list[PendingFile],
    claims: LoadClaims | None,
    report: LoadReport,
) -> None:
    """`_load_files`, in rounds of `load_batch_files` files claimed first (all at once
    for an index's owner); the files another loader holds are skipped."""
    size = settings.load_batch_files if claims is not None else max(len(pending), 1)
    for start in range(0, len(pending), size):
        chunk = pending[start : start + size]
        with _claimed(claims, index) as claim:
            mine = claim.take([item.file_id for item in chunk])
            if claims is not None:
                chunk = _still_pending(db, [item for item in chunk if item.file_id in mine])
            _load_files(db, index, settings, chunk, report)


def _load_pending(
    db: Database, index: EventIndex, settings: Settings, claims: LoadClaims | None
) -> LoadReport:
    report = LoadReport()
    started = time.perf_counter()
    with _claimed(claims, index) as claim:
        dropped = drop_abandoned(db, index, claim.take)
        pending = _pending_files(db, MAX_PENDING_PER_CALL)
        # pieces after the files pending now: those files' last pieces are among them
        limit = partial(_insert_limit, settings, index)
        report.rows += load_ready_pieces(db, index, limit, claim.take)
    pending = _measured(_with_pieces(db, pending))
    # piece folders are left over only where pieced files finish or attempts are dropped:
    # other calls (a bulk ingest's many) need not list the segments
    prune_pieces = dropped > 0 or any(item.pieced for item in pending)
    _load_claimed(db, index, settings, pending, claims, report)
    if report.files:
        prune_bundles(db, settings)
    if prune_pieces:
        prune_piece_dirs(db, settings)
    report.seconds = time.perf_counter() - started
    if report.files:
        logger.info(
            "loaded %d files (%d rows) in %d batches, %.2f s",
            report.files,
            report.rows,
            report.batches,
            report.seconds,
        )
    return report

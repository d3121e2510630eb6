"""Load pieces: a large file's events loaded while its worker is still parsing it.

A worker writing a file estimated at two `load_piece_events` or more writes its segment as a
directory of pieces (`segments.PieceWriter`) and publishes each complete piece here
(`load_queue.publish_piece`). The index owner loads the pieces of running attempts as they come
(`load_ready_pieces`), so the parse and the load of a large file overlap instead of
following each other (docs/decisions.md, "Large files load in pieces").

Each event is in the index exactly once:
- the first piece of an attempt replaces every row the index holds for its file (rows of an
  earlier attempt, or of the previous generation of a re-indexed file); a later piece
  replaces the rows of its own `seq` range, left by an owner that died between its INSERT
  and marking the piece loaded;
- only the pieces of a job's current attempt load, once it runs or is done; publishing the
  first piece of an attempt removes the piece rows of earlier ones; a later piece loads
  only once its attempt's first piece is loaded, whatever order they were published in;
- when the file completes, the loader marks it loaded if its pieces cover all its events
  and are all in (`fully_loaded`); otherwise it loads the whole segment as usual;
- pieces of a job that failed or was cancelled are dropped with the rows they loaded, and
  a file with an earlier complete segment gets that one loaded again (`drop_abandoned`);
- a piece that cannot be loaded (its INSERT fails even when retried) withdraws its file's
  pieces and rows (`load_failures.withdraw_pieces`): the file is loaded whole once complete.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Integer, delete, func, select, update
from sqlalchemy.orm import Session

from casescope.config import Settings
from casescope.errors import IndexUnavailableError
from casescope.model.db import Database
from casescope.model.enums import IndexState, JobState
from casescope.model.tables import EvidenceFile, Job, LoadPiece, Segment
from casescope.store.load_failures import LOAD_ERRORS, withdraw_pieces
from casescope.store.load_item import LoadItem
from casescope.store.load_queue import ABANDONED, ready_pieces_query
from casescope.store.segments import segment_data_bytes

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

logger = logging.getLogger(__name__)

_PIECES = LoadPiece.__table__


@dataclass(frozen=True)
class ReadyPiece:
    id: int
    case_id: int
    file_id: int
    piece: int
    seq_from: int
    seq_to: int
    path: Path
    attempt: tuple[int, int] = (0, 0)  # (job id, attempt) that wrote it

    def item(self, seq_from: int, seq_to: int) -> LoadItem:
        return LoadItem(self.case_id, self.file_id, self.path, seq_from, seq_to)


def _ready_pieces(db: Database) -> list[ReadyPiece]:
    query = select(
        LoadPiece.id,
        EvidenceFile.case_id,
        LoadPiece.file_id,
        LoadPiece.piece,
        LoadPiece.seq_from,
        LoadPiece.seq_to,
        LoadPiece.path,
        LoadPiece.job_id,
        LoadPiece.attempt,
    ).join(EvidenceFile, EvidenceFile.id == LoadPiece.file_id)
    with db.read() as session:
        rows = session.execute(
            ready_pieces_query(query).order_by(LoadPiece.file_id, LoadPiece.piece)
        ).all()
    return [ReadyPiece(*row[:6], Path(row[6]), (row[7], row[8])) for row in rows]


def _first_pieces_loaded(db: Database, pieces: list[ReadyPiece]) -> set[tuple[int, int]]:
    """Of the attempts of `pieces`, those whose first piece is loaded."""
    jobs = {piece.attempt[0] for piece in pieces if piece.piece}
    if not jobs:
        return set()
    with db.read() as session:
        rows = session.execute(
            select(LoadPiece.job_id, LoadPiece.attempt).where(
                LoadPiece.job_id.in_(sorted(jobs)), LoadPiece.piece == 0, LoadPiece.loaded
            )
        ).all()
    return {(job_id, attempt) for job_id, attempt in rows}


def _later_pieces_loaded(db: Database, pieces: list[ReadyPiece]) -> set[tuple[int, int]]:
    """Of the attempts of the first pieces among `pieces`, those with a later piece loaded:
    a slice run again after its worker died publishes its first piece again (jobs/slices.py)
    after other slices' pieces were loaded, which it must not clear."""
    jobs = {piece.attempt[0] for piece in pieces if not piece.piece}
    if not jobs:
        return set()
    with db.read() as session:
        rows = session.execute(
            select(LoadPiece.job_id, LoadPiece.attempt)
            .where(LoadPiece.job_id.in_(sorted(jobs)), LoadPiece.piece > 0, LoadPiece.loaded)
            .distinct()
        ).all()
    return {(job_id, attempt) for job_id, attempt in rows}


def _clear_for(index: EventIndex, piece: ReadyPiece, whole: bool) -> None:
    """Remove rows the piece would duplicate: all of its file's for a first piece (`whole`:
    none of its attempt's later pieces is loaded yet), else those of its `seq` range."""
    if whole:
        if index.files_present([piece.file_id]):
            index.delete_files([piece.file_id])
        return
    stale = piece.item(piece.seq_from, piece.seq_to)
    if index.rows_present(stale):
        index.remove_partial([stale])


#: A piece is inserted in INSERTs of about this many bytes of events: one part's worth
#: (`LOAD_SETTINGS`' min_insert_block_size_bytes). More rows per INSERT make no fewer parts,
#: only more memory: a 100,000-event piece of usual events in one INSERT took most of the
#: default budget and met the merges there (`bench/large_files.py`; docs/decisions.md,
#: "Large files load in pieces").
PIECE_INSERT_BYTES = 32 * 2**20


def piece_insert_rows(piece: ReadyPiece) -> int:
    """Events per INSERT for this piece: PIECE_INSERT_BYTES of its events (at least one),
    from the uncompressed sizes in its Parquet metadata (no floor in events: 10,000 events
    of 15 MB would need gigabytes)."""
    per_event = segment_data_bytes(piece.path) / max(piece.seq_to - piece.seq_from, 1)
    return max(1, int(PIECE_INSERT_BYTES / max(per_event, 1.0)))


def _load_piece(index: EventIndex, piece: ReadyPiece, limit: Callable[[], int]) -> None:
    """Insert the piece, in slices of at most `piece_insert_rows` and `limit()` events (always
    as a `seq` slice: a failed INSERT then removes only this piece's rows)."""
    most = piece_insert_rows(piece)
    start = piece.seq_from
    while start < piece.seq_to:
        end = min(start + min(most, limit()), piece.seq_to)
        index.load([piece.item(start, end)])
        start = end


#: Of the files given, those this loader may load now (store/load_claims.py, `ClaimRound.take`).
TakeFiles = Callable[[Sequence[int]], set[int]]


def load_ready_pieces(
    db: Database, index: EventIndex, limit: Callable[[], int], take: TakeFiles
) -> int:
    """Load every ready piece of the files `take` gives this loader (in file and piece
    order); the events loaded. A later piece of an attempt whose first piece is not loaded
    waits (pieces may be published out of order; the first clears the file's rows). A piece
    whose file is gone is withdrawn, and so are the pieces of a file one of whose pieces
    cannot be loaded: that file then loads from its segment once complete."""
    events = 0
    withdrawn: set[int] = set()
    ready = _ready_pieces(db)
    mine = take(sorted({piece.file_id for piece in ready})) if ready else set()
    started = _first_pieces_loaded(db, ready)
    resumed = _later_pieces_loaded(db, ready)
    for piece in ready:
        if piece.file_id in withdrawn or piece.file_id not in mine:
            continue
        if piece.piece and piece.attempt not in started:
            continue  # a later piece waits for its attempt's first, which clears the file
        if not piece.path.is_file():
            logger.warning("load piece %s is missing; withdrawn", piece.path)
            with db.session() as session:
                session.execute(delete(_PIECES).where(_PIECES.c.id == piece.id))
            continue
        try:
            _clear_for(index, piece, whole=not piece.piece and piece.attempt not in resumed)
            _load_piece(index, piece, limit)
        except IndexUnavailableError:
            raise  # the server, not the piece: it stays ready for the next load
        except LOAD_ERRORS as error:
            withdraw_pieces(db, index, piece.file_id, error)
            withdrawn.add(piece.file_id)
            continue
        with db.session() as session:
            session.execute(update(_PIECES).where(_PIECES.c.id == piece.id).values(loaded=True))
        started.add(piece.attempt)
        events += piece.seq_to - piece.seq_from
        logger.info(
            "loaded piece %d of file %d (events %d-%d)",
            piece.piece,
            piece.file_id,
            piece.seq_from,
            piece.seq_to,
        )
    return events


def fully_loaded(db: Database, counts: dict[int, int]) -> set[int]:
    """Of files completed with `counts` events (file id -> events), those whose finished
    attempt's pieces are all loaded and hold exactly that many events."""
    if not counts:
        return set()
    query = (
        select(
            LoadPiece.file_id,
            func.sum(LoadPiece.seq_to - LoadPiece.seq_from),
            func.min(LoadPiece.loaded.cast(Integer)),
        )
        .join(Job, Job.id == LoadPiece.job_id)
        .where(
            LoadPiece.file_id.in_(list(counts)),
            Job.attempts == LoadPiece.attempt,
            Job.state == JobState.DONE,
        )
        .group_by(LoadPiece.file_id)
    )
    with db.read() as session:
        rows = session.execute(query).all()
    return {file_id for file_id, events, loaded in rows if loaded and events == counts[file_id]}


def forget_pieces(session: Session, file_ids: list[int]) -> None:
    """The piece rows of files now loaded (in the caller's transaction)."""
    if file_ids:
        session.execute(delete(_PIECES).where(_PIECES.c.file_id.in_(file_ids)))


def drop_abandoned(db: Database, index: EventIndex, take: TakeFiles) -> int:
    """Withdraw the pieces of failed or cancelled jobs and the rows they loaded; a file
    with an earlier complete segment is set to load it again. The files dropped (none
    while `take` leaves one of them to another loader, which drops them)."""
    with db.read() as session:
        rows = session.execute(
            select(LoadPiece.file_id, LoadPiece.job_id, LoadPiece.loaded)
            .join(Job, Job.id == LoadPiece.job_id)
            .where(Job.state.in_(ABANDONED))
        ).all()
        if not rows:
            return 0
        files = {row.file_id for row in rows}
        jobs = {row.job_id for row in rows}
        others = set(
            session.scalars(
                select(LoadPiece.file_id).where(
                    LoadPiece.file_id.in_(files), LoadPiece.job_id.not_in(jobs)
                )
            )
        )
    # rows of a file whose newer job has pieces too are that job's to replace
    touched = sorted({row.file_id for row in rows if row.loaded} - others)
    if len(take(sorted(files))) < len(files):
        return 0
    if touched:
        index.delete_files(touched)
    with db.session() as session:
        session.execute(
            update(EvidenceFile)
            .where(EvidenceFile.id.in_(touched), EvidenceFile.segment_id.is_not(None))
            .values(
                index_state=IndexState.PENDING,
                index_generation=EvidenceFile.index_generation + 1,
            )
        )
        session.execute(delete(_PIECES).where(_PIECES.c.job_id.in_(jobs)))
    logger.info("dropped the pieces of %d abandoned jobs (%d files)", len(jobs), len(files))
    return len(files)


_ATTEMPT_DIR = re.compile(r"\.j(\d+)a(\d+)$")


def orphan_piece_dirs(db: Database, settings: Settings) -> list[Path]:
    """Piece directories no segment, piece or running attempt refers to (left by attempts
    that died, or by segments since replaced)."""
    found = [p for p in settings.segments_dir.glob("*/*") if _ATTEMPT_DIR.search(p.name)]
    if not found:
        return []
    with db.read() as session:
        kept = {str(Path(p)) for p in session.scalars(select(Segment.path))}
        kept |= {str(Path(p).parent) for p in session.scalars(select(LoadPiece.path))}
        running = {
            (job_id, attempts)
            for job_id, attempts in session.execute(
                select(Job.id, Job.attempts).where(Job.state == JobState.RUNNING)
            )
        }
    orphans = []
    for path in found:
        match = _ATTEMPT_DIR.search(path.name)
        assert match is not None
        if str(path) in kept or (int(match[1]), int(match[2])) in running:
            continue
        orphans.append(path)
    return orphans

"""Files whose events cannot be loaded into the index: failed alone, never retried by themselves.

The index owner loads pending files in batches (store/loader.py). A load that fails for one
file's sake (its events need more memory than the index's budget allows, its segment is
missing or damaged) used to propagate out of every owner's start, so that `status`,
`search`, `export` and `ingest` failed for every case of the home until the budget was
raised. Now the loader tries the files of a failed batch one by one, and a file that fails
alone is marked failed here with a message saying why and how to load it again; its rows
and load pieces go. Its segment stays: `reindex` (or `jobs retry`) processes it again.
"""

from __future__ import annotations

import logging
import re
import shlex
from typing import TYPE_CHECKING

import pyarrow as pa
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from casescope.errors import CasescopeError
from casescope.model.db import Database
from casescope.model.enums import FileStatus, IndexState, JobState
from casescope.model.tables import Case, EvidenceFile, Job, LoadPiece
from casescope.store.query_bounds import is_memory_error

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

logger = logging.getLogger(__name__)

#: What loading one file's events can fail with: chDB's errors are RuntimeErrors (ChdbError),
#: a missing or damaged segment an OSError or an Arrow error (ArrowInvalid is a ValueError).
#: Errors of the metadata DB are not among them: they are no file's fault.
LOAD_ERRORS: tuple[type[Exception], ...] = (
    RuntimeError,
    OSError,
    ValueError,
    CasescopeError,
    pa.ArrowException,
)

_MEMORY = re.compile(r"would use ([\d.]+ \w+).*?maximum: ([\d.]+ \w+)", re.DOTALL)
DETAIL_CHARS = 300


def load_error_message(error: BaseException, memory_mb: int, case: str, file_id: int) -> str:
    """Why a file's events are not in the index, and how to load them again."""
    again = f"`casescope reindex --case {shlex.quote(case)} --file {file_id}`"
    if is_memory_error(error):
        found = _MEMORY.search(str(error))
        needed = f" (an INSERT would have used {found[1]} of {found[2]})" if found else ""
        return (
            "its events could not be loaded into the event index within the index's memory "
            f"budget, CASESCOPE_INDEX_MEMORY_MB={memory_mb}{needed}; raise it, then load the "
            f"file again with {again}"
        )
    detail = " ".join(str(error).split())[:DETAIL_CHARS] or type(error).__name__
    return (
        f"its events could not be loaded into the event index ({detail}); the evidence is "
        f"kept: {again} processes the file again"
    )


def fail_load(
    db: Database,
    index: EventIndex,
    file_id: int,
    generation: int,
    error: BaseException,
    memory_mb: int,
) -> bool:
    """Fail a completed file whose events cannot be loaded, and its last job (so that
    `jobs retry` takes it): out of the load queue, its rows in the index (what a failed
    INSERT left) and its load pieces gone. A file re-indexed since, or with a job running,
    is left pending. Whether the file was failed."""
    current = (
        EvidenceFile.id == file_id,
        EvidenceFile.index_generation == generation,
        EvidenceFile.index_state == IndexState.PENDING,
        EvidenceFile.status == FileStatus.COMPLETED,
    )
    with db.read() as session:
        case = session.scalar(
            select(Case.name).join(EvidenceFile, EvidenceFile.case_id == Case.id).where(*current)
        )
    if case is None:  # re-indexed meanwhile, or a job of it runs: the next load tries again
        logger.warning("file %d could not be loaded, and has changed since: %s", file_id, error)
        return False
    message = load_error_message(error, memory_mb, case, file_id)
    try:
        index.delete_files([file_id])
    except LOAD_ERRORS as exc:  # a re-load deletes them before inserting anyway
        logger.warning("file %d: its partial rows could not be deleted (%s)", file_id, exc)
    failed = {"status": FileStatus.FAILED, "error": message, "index_state": IndexState.NONE}
    with db.session() as session:
        if not session.execute(update(EvidenceFile).where(*current).values(**failed)).rowcount:
            return False
        session.execute(delete(LoadPiece).where(LoadPiece.file_id == file_id))
        _fail_last_job(session, file_id, message)
    logger.error("file %d failed: %s", file_id, message, exc_info=error)
    return True


def _fail_last_job(session: Session, file_id: int, message: str) -> None:
    job_id = session.scalar(
        select(Job.id)
        .where(Job.file_id == file_id, Job.state == JobState.DONE)
        .order_by(Job.id.desc())
        .limit(1)
    )
    if job_id is not None:
        session.execute(
            update(Job).where(Job.id == job_id).values(state=JobState.FAILED, last_error=message)
        )


def withdraw_pieces(db: Database, index: EventIndex, file_id: int, error: BaseException) -> None:
    """A load piece of a file being parsed could not be loaded: drop the rows and the piece
    rows of the file, which is then loaded whole from its segment once complete (and failed
    there if it cannot be)."""
    logger.warning(
        "file %d: a load piece could not be loaded (%s); the file will be loaded whole",
        file_id,
        " ".join(str(error).split())[:DETAIL_CHARS],
        exc_info=error,
    )
    try:
        index.delete_files([file_id])
    except LOAD_ERRORS as exc:  # the whole load deletes them before inserting anyway
        logger.warning("file %d: its piece rows could not be deleted (%s)", file_id, exc)
    with db.session() as session:
        session.execute(delete(LoadPiece).where(LoadPiece.file_id == file_id))

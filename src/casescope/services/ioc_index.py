"""Hunt IOCs new to a case in the event index, in the index owner.

Why: docs/decisions.md, "Hunting new IOCs in the index".

When IOCs are added to (or re-enabled in) a case whose files are already hunted, only the
new IOCs need hunting, and only in the files whose events are in the index. One query per
chunk of IOCs (`store.ioc_hunt`) finds their hits there; each file's hits are then
written in one transaction that first deletes any hits of those IOCs in that file, so a
worker's `ioc_only` run that persisted the same hits meanwhile cannot double them, and the
hits of every other IOC stay as they are (same rows, same ids).

Completed files whose events are not in the index (their load failed) are returned, for the
caller to re-hunt from their segments.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa
from sqlalchemy import delete, insert, select

from casescope.config import Settings
from casescope.hunt.ioc import Ioc
from casescope.hunt.sql import CHUNK_SIZE
from casescope.model.db import Database, in_chunks
from casescope.model.enums import FileStatus, IndexState
from casescope.model.tables import EvidenceFile, IocHit
from casescope.model.tables import Ioc as IocRow
from casescope.store.ioc_hunt import stream_ioc_hits
from casescope.store.loader import load_pending

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

#: The index stores a missing time as the epoch (`store.index`); a hit keeps it as None.
_NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class IndexHunt:
    """What an index-side hunt did."""

    hits: int = 0  # hits written
    files: int = 0  # files searched in the index
    not_indexed: list[int] = field(default_factory=list)  # completed files not in the index


def hunt_new_iocs(
    db: Database, settings: Settings, index: EventIndex, case_id: int, iocs: Sequence[Ioc]
) -> IndexHunt:
    """Hunt `iocs` (with ids) in the case's completed files through the index."""
    report = IndexHunt()
    load_pending(db, index, settings)
    loaded, report.not_indexed = _completed_files(db, case_id)
    report.files = len(loaded)
    if not iocs or not loaded:
        return report
    for start in range(0, len(iocs), CHUNK_SIZE):
        chunk = iocs[start : start + CHUNK_SIZE]
        ids = [int(ioc.id or 0) for ioc in chunk]
        for file_id, rows in _rows_by_file(stream_ioc_hits(index, chunk, case_id, loaded)):
            report.hits += _replace_file_hits(db, case_id, file_id, ids, rows)
    return report


def _completed_files(db: Database, case_id: int) -> tuple[list[int], list[int]]:
    """The case's completed files with events: (those in the index, those not)."""
    query = select(EvidenceFile.id, EvidenceFile.index_state).where(
        EvidenceFile.case_id == case_id,
        EvidenceFile.status == FileStatus.COMPLETED,
        EvidenceFile.segment_id.is_not(None),
        EvidenceFile.event_count > 0,
    )
    with db.read() as session:
        rows = session.execute(query.order_by(EvidenceFile.id)).all()
    loaded = [file_id for file_id, state in rows if state == IndexState.LOADED]
    return loaded, [file_id for file_id, state in rows if state != IndexState.LOADED]


def _rows_by_file(
    batches: Iterator[pa.RecordBatch],
) -> Iterator[tuple[int, list[dict[str, object]]]]:
    """The hunt's rows (ordered by file) grouped per file: one file's hits in memory at once."""
    current: int | None = None
    rows: list[dict[str, object]] = []
    for batch in batches:
        for row in batch.to_pylist():
            file_id = int(row["file_id"])
            if current is not None and file_id != current:
                yield current, rows
                rows = []
            current = file_id
            rows.append(row)
    if current is not None:
        yield current, rows


def _replace_file_hits(
    db: Database, case_id: int, file_id: int, ioc_ids: list[int], rows: list[dict[str, object]]
) -> int:
    """Write one file's hits of `ioc_ids` (replacing any), only for IOCs still enabled."""
    enabled: set[int] = set()
    with db.session() as session:
        for chunk in in_chunks(ioc_ids):
            enabled.update(
                session.scalars(
                    select(IocRow.id).where(IocRow.id.in_(chunk), IocRow.enabled.is_(True))
                )
            )
            session.execute(
                delete(IocHit).where(IocHit.file_id == file_id, IocHit.ioc_id.in_(chunk))
            )
        hits = [_hit(case_id, file_id, row) for row in rows if int(row["ioc_id"]) in enabled]
        if hits:
            session.execute(insert(IocHit), hits)
    return len(hits)


def _hit(case_id: int, file_id: int, row: dict[str, object]) -> dict[str, object]:
    ts = row["ts"]
    if isinstance(ts, datetime):
        ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
        ts = None if ts == _NO_TIME else ts
    return {
        "case_id": case_id,
        "file_id": file_id,
        "seq": int(row["seq"]),
        "record_id": row["record_id"],
        "ts": ts,
        "ioc_id": int(row["ioc_id"]),
        "field": _text(row["field"]),
        "excerpt": _text(row["excerpt"]),
    }


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")

"""Per-case exclusions in the metadata DB, and their effect on the stored detections.

`reapply(db, case_id, rule_uids)` re-decides `detections.excluded_by` for the case's hits of
the given rules only: every other hit stays as it is. Rule switches need nothing but the
detection rows; field conditions and Sigma filters need the events, which come from the
files' segments (only the rows of those hits, by `seq`): nothing is re-parsed.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from casescope.detect.exclusions import ANY, Exclusion, ExclusionSet
from casescope.model.db import Database
from casescope.model.tables import Detection, EvidenceFile, Rule, Segment
from casescope.model.tables import Exclusion as ExclusionRow
from casescope.store.segments import segment_files

logger = logging.getLogger(__name__)

RAW_COLUMN = "raw"  # the original event: no exclusion reads it


def as_exclusion(row: ExclusionRow) -> Exclusion:
    """The engine's view of a stored exclusion."""
    conditions = json.loads(row.conditions) if row.conditions else {}
    return Exclusion(
        id=row.id,
        rule_uids=tuple(json.loads(row.rule_uids)),
        source=row.source,
        conditions={name: tuple(values) for name, values in conditions.items()},
        document=row.document,
    )


def case_exclusions(session: Session, case_id: int) -> list[Exclusion]:
    rows = session.scalars(select(ExclusionRow).where(ExclusionRow.case_id == case_id))
    return [as_exclusion(row) for row in rows]


def _hits(session: Session, case_id: int, rule_uids: set[str]) -> list[tuple[int, int, int, str]]:
    """(detection id, file id, seq, compiled rule id) of the case's hits of `rule_uids`."""
    query = (
        select(Detection.id, Detection.file_id, Detection.seq, Rule.source, Rule.rule_uid)
        .join(Rule, Rule.id == Detection.rule_id)
        .where(Detection.case_id == case_id)
    )
    if ANY not in rule_uids:
        query = query.where(Rule.rule_uid.in_(rule_uids))
    return [(d, f, s, f"{src}:{uid}") for d, f, s, src, uid in session.execute(query)]


def _segment_rows(path: Path, seqs: Sequence[int]) -> pa.RecordBatch | None:
    """The events of a segment with the given `seq`s (row groups pruned by statistics)."""
    wanted = pa.array(sorted(set(seqs)), pa.uint64())
    tables = []
    for part in segment_files(path):
        names = [n for n in pq.ParquetFile(part).schema_arrow.names if n != RAW_COLUMN]
        table = pq.read_table(part, columns=names, filters=pc.field("seq").isin(wanted))
        tables.append(table)
    if not tables:
        return None
    table = pa.concat_tables(tables).combine_chunks()
    return table.to_batches()[0] if table.num_rows else None


def _decide(
    session: Session, exclusions: ExclusionSet, hits: list[tuple[int, int, int, str]]
) -> dict[int, int]:
    """Detection id -> the exclusion that hides it, for hits of one case."""
    decided: dict[int, int] = {}
    by_file: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
    for det, file_id, seq, rule in hits:
        by_file[file_id].append((det, seq, rule))
    for file_id, items in by_file.items():
        table = pa.table(
            {
                "seq": pa.array([seq for _, seq, _ in items], pa.uint64()),
                "rule_id": [rule for _, _, rule in items],
            }
        )
        batch = _file_events(session, file_id, [seq for _, seq, _ in items], exclusions, table)
        verdicts = exclusions.excluded(batch, table)
        decided.update({det: ex for (det, _, _), ex in zip(items, verdicts, strict=True) if ex})
    return decided


def _file_events(
    session: Session,
    file_id: int,
    seqs: list[int],
    exclusions: ExclusionSet,
    hits: pa.Table,
) -> pa.RecordBatch:
    """The file's events of those hits when an exclusion needs them; else an empty batch
    (rule switches decide from the detection rows alone)."""
    if not exclusions.needs_events(hits.column("rule_id").to_pylist()):
        return pa.RecordBatch.from_pylist([], schema=pa.schema([("seq", pa.uint64())]))
    query = select(Segment.path).join(EvidenceFile, EvidenceFile.segment_id == Segment.id)
    path = session.scalar(query.where(EvidenceFile.id == file_id))
    batch = _segment_rows(Path(path), seqs) if path else None
    if batch is None:
        logger.warning("file %d: no segment to read for its excluded hits", file_id)
        return pa.RecordBatch.from_pylist([], schema=pa.schema([("seq", pa.uint64())]))
    return batch


def reapply(db: Database, case_id: int, rule_uids: Iterable[str]) -> int:
    """Re-decide which of the case's hits of `rule_uids` are hidden; returns how many are."""
    wanted = set(rule_uids)
    with db.session() as session:
        hits = _hits(session, case_id, wanted)
        exclusions = ExclusionSet.build(case_exclusions(session, case_id))
        decided = _decide(session, exclusions, hits) if exclusions else {}
        ids = [det for det, *_ in hits]
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            session.execute(
                update(Detection).where(Detection.id.in_(chunk)).values(excluded_by=None)
            )
        by_exclusion: dict[int, list[int]] = defaultdict(list)
        for det, exclusion in decided.items():
            by_exclusion[exclusion].append(det)
        for exclusion, dets in by_exclusion.items():
            for start in range(0, len(dets), 5000):
                chunk = dets[start : start + 5000]
                session.execute(
                    update(Detection).where(Detection.id.in_(chunk)).values(excluded_by=exclusion)
                )
    logger.info("case %d: %d of %d hits of %s hidden", case_id, len(decided), len(ids), wanted)
    return len(decided)

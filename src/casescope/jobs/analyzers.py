"""Analyzers that see every batch of a file during `process_file`: Sigma (IOCs to come)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from casescope.detect.ruleset import ActiveRules
from casescope.model.enums import FileStatus
from casescope.model.tables import Detection, EvidenceFile


class SigmaAnalyzer:
    """Evaluates the active rule set on each batch; writes the file's detections."""

    status = FileStatus.SIGMA

    def __init__(self, active: ActiveRules) -> None:
        self.active = active
        self._rows: list[dict[str, object]] = []

    def consume(self, batch: pa.RecordBatch) -> None:
        hits = self.active.ruleset.evaluate(batch)
        if not hits.num_rows:
            return
        first = batch.column("seq")[0].as_py()
        index = pa.array(hits.column("seq").to_numpy() - np.uint64(first))
        record_ids = batch.column("record_id").take(index).to_pylist()
        times = batch.column("ts").take(index).to_pylist()
        for seq, rule_uid, record_id, ts in zip(
            hits.column("seq").to_pylist(),
            hits.column("rule_id").to_pylist(),
            record_ids,
            times,
            strict=True,
        ):
            self._rows.append(
                {
                    "seq": seq,
                    "rule_id": self.active.row_ids[rule_uid],
                    "record_id": record_id,
                    "ts": ts,
                }
            )

    def persist(self, session: Session, file_id: int) -> int:
        """Replace the file's detections with this run's (idempotent across retries)."""
        case_id = session.scalar(select(EvidenceFile.case_id).where(EvidenceFile.id == file_id))
        session.execute(delete(Detection).where(Detection.file_id == file_id))
        if self._rows:
            rows = [{"case_id": case_id, "file_id": file_id, **row} for row in self._rows]
            session.execute(insert(Detection), rows)
        return len(self._rows)

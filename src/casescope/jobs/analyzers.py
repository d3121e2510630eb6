"""Analyzers that see every batch of a file during `process_file`: Sigma and IOCs."""

from __future__ import annotations

import json
import logging
from bisect import bisect_left
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from casescope.detect.active import ActiveRules
from casescope.detect.correlations import detection_frame
from casescope.detect.exclusions import ExclusionSet
from casescope.hunt.matcher import IocMatcher
from casescope.hunt.values import CORE_TEXT_COLUMNS
from casescope.jobs.case_iocs import enabled_ioc_ids
from casescope.jobs.context import GroupPart
from casescope.jobs.held_rows import INSERT_ROWS, HeldRows
from casescope.model.enums import FileStatus
from casescope.model.tables import Detection, EvidenceFile, IocHit, Rule
from casescope.parse.schema import EVENT_SCHEMA

logger = logging.getLogger(__name__)

#: The original event as JSON: kept in segments and the index, never read by rules or IOCs.
RAW_COLUMN = "raw"
#: A detection as `SigmaAnalyzer` holds it until `persist` (a `detections` row less case
#: and file).
DETECTION_ROWS = pa.schema(
    [
        ("seq", pa.uint64()),
        ("rule_id", pa.int64()),
        ("record_id", EVENT_SCHEMA.field("record_id").type),
        ("ts", EVENT_SCHEMA.field("ts").type),
        ("computer", pa.string()),
        ("fields", pa.string()),
        ("excluded_by", pa.int64()),
    ]
)


class SigmaAnalyzer:
    """Evaluates the active rule set on each batch; writes the file's detections.

    With `previous` (the manifest of the set the file was last evaluated with, for
    `sigma_only`), rules whose content is unchanged keep their detections and are not
    evaluated again; only new and changed rules run.
    """

    status = FileStatus.SIGMA

    def __init__(
        self,
        active: ActiveRules,
        previous_hash: str | None = None,
        previous: Mapping[str, str] | None = None,
        batch_events: int = 25_000,
        exclusions: ExclusionSet | None = None,
    ) -> None:
        self.active = active
        self.exclusions = exclusions  # the case's: new hits they cover are written hidden
        self.keep = active.kept_since(previous_hash, previous)
        self.ruleset = active.pending(previous_hash, self.keep)
        self.batch_events = batch_events
        self._buffer: list[pa.RecordBatch] = []
        self._buffered = 0
        self._rows = HeldRows(DETECTION_ROWS)

    @property
    def wants_events(self) -> bool:
        return bool(self.ruleset.rules)

    def consume(self, batch: pa.RecordBatch) -> None:
        """Buffer parser batches: evaluation per batch has a fixed cost, so large files are
        evaluated `batch_events` at a time (`CASESCOPE_SIGMA_BATCH_EVENTS`: the default is the
        fastest size on large files, and larger buffers only cost memory; docs/sigma.md).

        The buffer leaves out each event's original record (`raw`), which no rule reads: it
        is most of a batch's bytes (EVTX: ~2.5 KB an event), and the buffer is concatenated
        (copied) before evaluation, so keeping it doubled the worker's peak on large files.
        """
        if RAW_COLUMN in batch.schema.names:
            batch = batch.drop_columns([RAW_COLUMN])
        self._buffer.append(batch)
        self._buffered += batch.num_rows
        if self._buffered >= self.batch_events:
            self.finish()

    def finish(self) -> None:
        """Evaluate whatever is buffered."""
        if not self._buffer:
            return
        batch = self._buffer[0] if len(self._buffer) == 1 else pa.concat_batches(self._buffer)
        self._buffer, self._buffered = [], 0
        self._evaluate(batch)

    @property
    def shared(self) -> object:
        """Analyzers with the same `shared` find hits the same way: a group of small files
        is evaluated once over all their events (`jobs/group.py`)."""
        return self.ruleset

    def find(self, batch: pa.RecordBatch) -> pa.Table:
        """Hits (`seq`, `rule_id`, ordered by seq) of the rules to run on `batch`."""
        return self.ruleset.evaluate(batch)

    def _evaluate(self, batch: pa.RecordBatch) -> None:
        self.add_hits(batch, self.find(batch))

    @staticmethod
    def add_group_hits(
        combined: pa.RecordBatch, hits: pa.Table, parts: Sequence[GroupPart[SigmaAnalyzer]]
    ) -> None:
        """`add_hits` for every file of a group (see `IocAnalyzer.add_group_hits`): file by
        file, as its exclusions and correlation fields read its own events."""
        starts = hits.column("seq").to_numpy() if hits.num_rows else np.empty(0, np.uint64)
        for part in parts:
            lo, hi = np.searchsorted(starts, [part.start, part.stop])
            mine = hits.slice(int(lo), int(hi - lo))
            index = mine.schema.get_field_index("seq")
            own = pc.subtract(mine.column(index), pa.scalar(part.start, pa.uint64()))
            part.analyzer.add_hits(part.events, mine.set_column(index, "seq", own))

    def add_hits(self, batch: pa.RecordBatch, hits: pa.Table) -> None:
        """Keep the detections `hits` (found in `batch`) for `persist`, in Arrow."""
        if not hits.num_rows:
            return
        first = batch.column("seq")[0].as_py()
        index = pa.array(hits.column("seq").to_numpy() - np.uint64(first))
        row_ids = self.active.row_ids
        hidden = (
            self.exclusions.excluded(batch, hits) if self.exclusions else [None] * hits.num_rows
        )
        self._rows.add(
            [
                hits.column("seq").combine_chunks().cast(pa.uint64()),
                pa.array([row_ids[uid] for uid in hits.column("rule_id").to_pylist()], pa.int64()),
                batch.column("record_id").take(index),
                batch.column("ts").take(index),
                pc.fill_null(batch.column("computer").take(index), ""),
                pa.array(self._correlation_fields(batch, hits), pa.string()),
                pa.array(hidden, pa.int64()),
            ]
        )

    def _correlation_fields(self, batch: pa.RecordBatch, hits: pa.Table) -> list[str | None]:
        """Per hit, the JSON of the fields correlation rules group by (None if not needed)."""
        needed = self.active.correlation_fields
        if not needed:
            return [None] * hits.num_rows
        names = sorted(set().union(*needed.values()))
        out: list[str | None] = []
        for row in detection_frame(batch, hits, names).iter_rows(named=True):
            wanted = needed.get(row["rule_id"])
            values = {n: row[n] for n in sorted(wanted or ()) if row[n] is not None}
            out.append(json.dumps(values) if wanted else None)
        return out

    def fresh(self) -> SigmaAnalyzer:
        """An analyzer like this one with nothing found yet (a slice's: jobs/slices.py)."""
        return SigmaAnalyzer(
            self.active, batch_events=self.batch_events, exclusions=self.exclusions
        )

    def persist_range(self, session: Session, file_id: int, case_id: int, seqs: range) -> int:
        """Replace the file's detections of events `seqs` (a slice's) with this run's."""
        session.execute(
            delete(Detection).where(
                Detection.file_id == file_id,
                Detection.seq >= seqs.start,
                Detection.seq < seqs.stop,
            )
        )
        _drop_hits_of_removed_rules(session, [self._rows])
        _insert_held(session, [(self._rows, file_id, case_id)])
        return len(self._rows)

    def persist(self, session: Session, file_id: int) -> int:
        """Replace the file's detections with this run's (idempotent across retries)."""
        case_id = session.scalar(select(EvidenceFile.case_id).where(EvidenceFile.id == file_id))
        return self.persist_many(session, [(self, file_id, case_id)])[0]

    @classmethod
    def persist_many(
        cls, session: Session, items: Sequence[tuple[SigmaAnalyzer, int, int]]
    ) -> list[int]:
        """`persist` for several files at once, each (analyzer, file id, case id), in a few
        statements; the detections written per file."""
        replaced = [file_id for analyzer, file_id, _ in items if not analyzer.keep]
        if replaced:
            session.execute(delete(Detection).where(Detection.file_id.in_(replaced)))
        by_hash: dict[str, list[int]] = {}
        for analyzer, file_id, _ in items:
            if analyzer.keep:
                active = analyzer.active
                kept = [active.row_ids[uid] for uid in analyzer.keep if uid in active.row_ids]
                session.execute(
                    delete(Detection).where(
                        Detection.file_id == file_id, Detection.rule_id.not_in(kept)
                    )
                )
            by_hash.setdefault(analyzer.active.hash, []).append(file_id)
        for ruleset_hash, file_ids in by_hash.items():
            session.execute(
                update(EvidenceFile)
                .where(EvidenceFile.id.in_(file_ids))
                .values(sigma_ruleset=ruleset_hash)
            )
        held = [analyzer._rows for analyzer, _, _ in items]
        _drop_hits_of_removed_rules(session, held)
        _insert_held(
            session,
            [
                (rows, file_id, case_id)
                for rows, (_, file_id, case_id) in zip(held, items, strict=True)
            ],
        )
        return [len(rows) for rows in held]


def _drop_hits_of_removed_rules(session: Session, held: Sequence[HeldRows]) -> None:
    """Hits of rules removed while the files were read (their set deleted, or re-imported
    without them: store/rule_removal.py) are dropped here: a hit must reference its rule."""
    referenced = set().union(*(rows.distinct("rule_id") for rows in held))
    if not referenced:
        return
    existing = set(session.scalars(select(Rule.id).where(Rule.id.in_(referenced))))
    if gone := referenced - existing:
        dropped = sum(rows.drop("rule_id", gone) for rows in held)
        logger.info("%d hits of %d rules removed meanwhile were dropped", dropped, len(gone))


_INSERT_DETECTION = insert(Detection.__table__)


def _insert_held(session: Session, items: Sequence[tuple[HeldRows, int, int]]) -> None:
    """Insert each file's held detections (rows, file id, case id): the small files of a
    group together, a large file's `INSERT_ROWS` at a time. A Core INSERT: the ORM's bulk
    insert costs ~40% more CPU per row (123,606 detections: ~2.3 s against ~1.7 s)."""
    pending: list[dict[str, object]] = []
    for held, file_id, case_id in items:
        for chunk in held.chunks():
            pending.extend({"case_id": case_id, "file_id": file_id, **row} for row in chunk)
            if len(pending) >= INSERT_ROWS:
                session.execute(_INSERT_DETECTION, pending)
                pending = []
    if pending:
        session.execute(_INSERT_DETECTION, pending)


#: Longest excerpt of a matched value kept with an IOC hit.
EXCERPT_CHARS = 400


class IocAnalyzer:
    """Runs the case's compiled IOCs on each batch; writes the file's IOC hits.

    Every run replaces all of the file's hits, so an `ioc_only` re-hunt after any IOC change
    and a retried attempt both leave exactly one set of hits.
    """

    status = FileStatus.IOC

    def __init__(self, matcher: IocMatcher, case_id: int) -> None:
        self.matcher = matcher
        self.case_id = case_id
        self._rows: list[dict[str, object]] = []

    @property
    def wants_events(self) -> bool:
        return bool(self.matcher.patterns)

    @property
    def shared(self) -> object:
        """The compiled matcher: see `SigmaAnalyzer.shared`."""
        return self.matcher

    def find(self, batch: pa.RecordBatch) -> pa.Table:
        """Hits (`seq`, `ioc_id`, `field`, ordered by seq) of the IOCs in `batch`."""
        return self.matcher.match(batch)

    def consume(self, batch: pa.RecordBatch) -> None:
        self.add_hits(batch, self.find(batch))

    def add_hits(self, batch: pa.RecordBatch, hits: pa.Table) -> None:
        """Keep the IOC hits `hits` (found in `batch`) for `persist`."""
        if hits.num_rows:
            self._rows.extend(_hit_rows(batch, hits))

    def finish(self) -> None:
        """Nothing is buffered: the matcher's cost per batch is small."""

    def fresh(self) -> IocAnalyzer:
        """An analyzer like this one with nothing found yet (a slice's: jobs/slices.py)."""
        return IocAnalyzer(self.matcher, self.case_id)

    def persist_range(self, session: Session, file_id: int, case_id: int, seqs: range) -> int:
        """Replace the file's hits on events `seqs` (a slice's) with this run's."""
        session.execute(
            delete(IocHit).where(
                IocHit.file_id == file_id, IocHit.seq >= seqs.start, IocHit.seq < seqs.stop
            )
        )
        enabled = enabled_ioc_ids(session, case_id)
        rows = [
            {"case_id": case_id, "file_id": file_id, **row}
            for row in self._rows
            if row["ioc_id"] in enabled
        ]
        if rows:
            session.execute(insert(IocHit), rows)
        return len(rows)

    @staticmethod
    def add_group_hits(
        combined: pa.RecordBatch, hits: pa.Table, parts: Sequence[GroupPart[IocAnalyzer]]
    ) -> None:
        """`add_hits` for every file of a group at once: `hits` were found in `combined`
        (the group's events, `seq` = row), file `n` holds rows `parts[n].start..stop`. The
        rows are built once for the group (a file's own rows cost a dozen Arrow calls
        however few its hits) and handed out by row range, with each file's own `seq`."""
        rows = _hit_rows(combined, hits) if hits.num_rows else []
        seqs = [row["seq"] for row in rows]
        for part in parts:
            lo, hi = bisect_left(seqs, part.start), bisect_left(seqs, part.stop)
            part.analyzer._rows.extend(
                {**row, "seq": row["seq"] - part.start} for row in rows[lo:hi]
            )

    def persist(self, session: Session, file_id: int) -> int:
        """Replace the file's hits with this run's (idempotent across retries).

        Hits of IOCs disabled or removed while the file was being read are dropped here, in
        the same transaction that writes the others.
        """
        return self.persist_many(session, [(self, file_id, self.case_id)])[0]

    @classmethod
    def persist_many(
        cls, session: Session, items: Sequence[tuple[IocAnalyzer, int, int]]
    ) -> list[int]:
        """`persist` for several files at once, each (analyzer, file id, case id), in a few
        statements; the hits written per file."""
        session.execute(delete(IocHit).where(IocHit.file_id.in_([f for _, f, _ in items])))
        enabled = {case: enabled_ioc_ids(session, case) for case in {c for _, _, c in items}}
        rows: list[dict[str, object]] = []
        written = []
        for analyzer, file_id, case_id in items:
            mine = [
                {"case_id": case_id, "file_id": file_id, **row}
                for row in analyzer._rows
                if row["ioc_id"] in enabled[case_id]
            ]
            rows.extend(mine)
            written.append(len(mine))
        if rows:  # Core: the ORM's bulk insert costs more per row (see `_insert_held`)
            session.execute(_INSERT_IOC_HIT, rows)
        return written


_INSERT_IOC_HIT = insert(IocHit.__table__)


def _hit_rows(batch: pa.RecordBatch, hits: pa.Table) -> list[dict[str, object]]:
    """One IocHit row (without case and file) per matcher hit, with the matched value."""
    seqs = batch.column("seq").to_numpy(zero_copy_only=False)
    index = np.searchsorted(seqs, hits.column("seq").to_numpy())
    take = pa.array(index)
    record_ids = batch.column("record_id").take(take).to_pylist()
    times = batch.column("ts").take(take).to_pylist()
    values = _field_values(batch, index, hits.column("field").to_pylist())
    return [
        {
            "seq": seq,
            "record_id": record_id,
            "ts": ts,
            "ioc_id": ioc_id,
            "field": name,
            "excerpt": value[:EXCERPT_CHARS],
        }
        for seq, record_id, ts, ioc_id, name, value in zip(
            hits.column("seq").to_pylist(),
            record_ids,
            times,
            hits.column("ioc_id").to_pylist(),
            hits.column("field").to_pylist(),
            values,
            strict=True,
        )
    ]


def _field_values(batch: pa.RecordBatch, rows: np.ndarray, names: list[str]) -> list[str]:
    """The value of field `names[i]` of event `rows[i]` (a core column or a map key; the
    first value of a repeated key, as matched first), looked up per distinct name."""
    out = [""] * len(names)
    positions_of: dict[str, list[int]] = {}
    for position, name in enumerate(names):
        positions_of.setdefault(name, []).append(position)
    fields = batch.column("fields")
    for name, positions in positions_of.items():
        take = pa.array(rows[positions])
        if name in CORE_TEXT_COLUMNS:
            values = batch.column(name).take(take)
        else:
            values = pc.map_lookup(fields.take(take), pa.scalar(name), "first")
        for position, value in zip(positions, values.to_pylist(), strict=True):
            out[position] = value or ""
    return out

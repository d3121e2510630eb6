"""A group's load bundle holds each file's events exactly, keyed by its case and file id."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from casescope.config import Settings
from casescope.jobs.context import FileInfo, WorkerContext
from casescope.jobs.group import EventSink, Member, write_bundle
from casescope.jobs.steps import StepLog, StepScope
from casescope.model.db import Database
from casescope.model.enums import FileType, Operation
from casescope.parse.files import iter_batches
from casescope.parse.report import ParseReport
from casescope.parse.schema import EVENT_SCHEMA
from casescope.workqueue.queue import ClaimedJob


def _member(file_id: int, case_id: int, path: Path) -> Member:
    info = FileInfo(file_id, case_id, f"{file_id:064x}", path, FileType.EVTX, None, {})
    log = StepLog(StepScope(case_id, file_id, file_id, "test"))
    member = Member(ClaimedJob(file_id, file_id, Operation.FULL, 1), info, [], log)
    sink = EventSink()
    for batch in iter_batches(path, FileType.EVTX, ParseReport()):
        sink.consume(batch)
    member.events = pa.concat_batches(sink.batches) if sink.batches else None
    return member


def test_bundle_rows_are_each_files_events(
    db: Database, settings: Settings, attack_samples: Path
) -> None:
    paths = sorted(attack_samples.rglob("*.evtx"))[:12]
    members = [_member(100 + n, 1 + n % 2, path) for n, path in enumerate(paths)]
    ctx = WorkerContext(settings=settings, db=db, worker_id="w1")

    bundle = write_bundle(ctx, members)

    assert bundle is not None and bundle.is_file()
    table = pq.read_table(bundle)
    assert table.num_rows == sum(m.events.num_rows for m in members if m.events is not None)
    for member in members:
        assert member.events is not None and member.outcome.bundle == bundle
        rows = table.filter(pc.equal(table["file_id"], member.info.id))
        assert set(rows["case_id"].to_pylist()) == {member.info.case_id}
        events = rows.select(EVENT_SCHEMA.names).combine_chunks()
        assert events.equals(pa.Table.from_batches([member.events]).combine_chunks())

"""`migrate verify`'s per-file event digests, computed by a real chDB index: equal for the
same events whatever the file id, different for one changed time or one missing event."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from casescope.migrate.verify import index_digests
from casescope.parse.batch import BatchBuilder
from casescope.store.index import ChdbIndex, LoadItem
from casescope.store.segments import SegmentWriter

SHA = "ab" * 32
EVENTS = 50


def _batch(shift_seq: int | None = None, drop_seq: int | None = None) -> pa.RecordBatch:
    builder = BatchBuilder()
    for seq in range(EVENTS):
        if seq == drop_seq:
            continue
        ts = None if seq == 7 else 1_700_000_000_000_000 + seq * 1_000_000
        if seq == shift_seq:
            ts = (ts or 0) + 1  # one microsecond later
        event_id = None if seq == 9 else 4624
        builder.add((ts, event_id, "Security", "P", "DC1", seq, 4, "alice", ""), {}, "{}")
    return builder.flush()


def _segment(home: Path, name: str, batch: pa.RecordBatch) -> Path:
    with SegmentWriter(home / "seg" / name / "events.parquet", home / "tmp") as writer:
        writer.write(batch)
        return writer.commit()


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbIndex]:
    """Files 1 and 2 hold the same events; 3 has one a microsecond later; 4 lacks one."""
    home = tmp_path_factory.mktemp("digests")
    batches = {1: _batch(), 2: _batch(), 3: _batch(shift_seq=20), 4: _batch(drop_seq=30)}
    chdb_index = ChdbIndex(home / "index")
    for file_id, batch in batches.items():  # files 1 and 2 share one segment: two loads
        chdb_index.load([LoadItem(1, file_id, _segment(home, str(file_id), batch))])
    yield chdb_index
    chdb_index.close()


def test_the_same_events_give_the_same_digest_under_any_file_id(index: ChdbIndex) -> None:
    digests = index_digests(index, 1, dict.fromkeys((1, 2, 3, 4), SHA))
    assert digests[1] == digests[2] and digests[1].count == EVENTS


def test_one_changed_time_or_one_missing_event_changes_it(index: ChdbIndex) -> None:
    digests = index_digests(index, 1, dict.fromkeys((1, 2, 3, 4), SHA))
    assert digests[3].count == EVENTS and digests[3] != digests[1]
    assert digests[4].count == EVENTS - 1 and digests[4] != digests[1]


def test_the_digest_is_tied_to_the_file_content(index: ChdbIndex) -> None:
    """Equal events under another file's sha256 are another file's events."""
    digests = index_digests(index, 1, {1: SHA, 2: "cd" * 32})
    assert digests[1].count == digests[2].count and digests[1] != digests[2]
    assert index_digests(index, 2, {1: SHA}) == {}  # another case sees none of them

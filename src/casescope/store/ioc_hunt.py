"""IOC hits found in the event index (the SQL is `hunt.sql`'s): the index-side hunt of IOCs
added to a case whose files are already hunted (`services.ioc_index`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import pyarrow as pa

from casescope.hunt.ioc import Ioc
from casescope.hunt.sql import CHUNK_SIZE, hunt_queries
from casescope.store.query_bounds import QueryKind

if TYPE_CHECKING:
    from casescope.store.index import EventIndex


def stream_ioc_hits(
    index: EventIndex, iocs: Sequence[Ioc], case_id: int, file_ids: Sequence[int]
) -> Iterator[pa.RecordBatch]:
    """The hits of `iocs` (with ids; at most CHUNK_SIZE of them, so one query) in the case's
    `file_ids`, ordered by file and event: (file_id, seq, ioc_id, field, ts, record_id,
    excerpt) rows, streamed as Arrow batches (bounded by CASESCOPE_LONG_QUERY_TIMEOUT_SECONDS)."""
    if len(iocs) > CHUNK_SIZE:
        raise ValueError(f"at most {CHUNK_SIZE} IOCs per index hunt query")
    for sql, params in hunt_queries(iocs, case_id, file_ids):
        yield from index.stream_batches(sql, params, kind=QueryKind.LONG)

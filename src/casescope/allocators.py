"""Which allocator Arrow uses in worker processes and in the index owner.

PyArrow's default pool (mimalloc in the wheels) keeps memory it has freed: a worker that
parsed a large EVTX file and evaluated the whole Sigma snapshot on it peaked ~80 MB higher
with it than with the C library's allocator, while Arrow itself held at most 72 MB
(a 64 MiB EVTX, 50,000-event Sigma batches: 566 → 482 MB peak RSS; parse and evaluation
~5% faster). Workers build and drop Arrow batches all day, so they return that memory; so
does the index owner, which streams exports and IOC hunts (1M of the 5M-event case's ~1.1 KB
events streamed: 557 → 479-487 MB peak RSS).
"""

from __future__ import annotations

import pyarrow as pa


def use_system_arrow_pool() -> None:
    """Allocate Arrow buffers with malloc/free, which give memory back, from now on."""
    pa.set_memory_pool(pa.system_memory_pool())

"""Allocator settings of worker processes and of the index owner.

PyArrow's default pool (mimalloc in the wheels) keeps memory it has freed: a worker that
parsed a large EVTX file and evaluated the whole Sigma snapshot on it peaked ~80 MB higher
with it than with the C library's allocator, while Arrow itself held at most 72 MB
(a 64 MiB EVTX, 50,000-event Sigma batches: 566 → 482 MB peak RSS; parse and evaluation
~5% faster). Workers build and drop Arrow batches all day, so they return that memory; so
does the index owner, which streams exports and IOC hunts (1M of the 5M-event case's ~1.1 KB
events streamed: 557 → 479-487 MB peak RSS).

glibc then serves those buffers. By default it raises its mmap threshold to the size of the
largest block freed so far, so the owner's multi-MB result chunks move into its heap, where
freed space stays with the process: streaming 2.5M exported events, its heap held 99-127 MB
free at the peak (609 MB RSS). A fixed threshold keeps such blocks mapped and given back:
517 MB, as fast (`limit_glibc_heap`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

import pyarrow as pa

logger = logging.getLogger(__name__)

#: glibc's `mallopt` parameter for the mmap threshold (malloc.h).
_M_MMAP_THRESHOLD = -3
#: Blocks from this size on are mapped on their own and unmapped when freed (1 MiB: 527 MB
#: peak, the same; 128 KiB: 526 MB with 35% more system time).
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024


def use_system_arrow_pool() -> None:
    """Allocate Arrow buffers with malloc/free, which give memory back, from now on."""
    pa.set_memory_pool(pa.system_memory_pool())


def limit_glibc_heap(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold at `threshold` (which also stops its dynamic raising);
    False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        logger.debug("no mallopt in the C library (%s): heap left as is", name)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold))

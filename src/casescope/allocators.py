"""How the index owner and the workers allocate: memory they free goes back to the system.

PyArrow's default pool (mimalloc in the wheels) keeps memory it has freed: a worker that
parsed a large EVTX file and evaluated the whole Sigma snapshot on it peaked ~80 MB higher
with it than with the C library's allocator, while Arrow itself held at most 72 MB
(a 64 MiB EVTX, 50,000-event Sigma batches: 566 → 482 MB peak RSS; parse and evaluation
~5% faster). Workers build and drop Arrow batches all day, so they return that memory; so
does the index owner, which streams exports and IOC hunts (1M of the 5M-event case's ~1.1 KB
events streamed: 557 → 479-487 MB peak RSS).

The C library (glibc) in turn keeps what it serves from its heap. It maps large blocks on
their own and unmaps them when freed, but "large" rises, up to 32 MiB, each time such a block
is freed; after the first few export chunks (20-40 MB of lines each) every block was served
from the heap, which keeps it: `return_large_blocks` fixes the threshold in the owner.
"""

from __future__ import annotations

import ctypes

import pyarrow as pa

#: Blocks of at least this size are mapped on their own, and unmapped when freed.
MMAP_THRESHOLD = 4 * 1024 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (glibc's malloc.h)


def use_system_arrow_pool() -> None:
    """Allocate Arrow buffers with malloc/free, which give memory back, from now on."""
    pa.set_memory_pool(pa.system_memory_pool())


def return_large_blocks() -> bool:
    """Fix glibc's mmap threshold at MMAP_THRESHOLD for this process (whether it could).

    `casescope export` of the 5M-event case (9.9 GB of CSV): 764-794 MB peak RSS with the
    rising threshold, 579-581 MB fixed, in 123-125 s instead of 115-116 s (more system time:
    each large block is mapped and faulted anew). Not in workers: their Arrow buffers grow by
    doubling, and the parse of a large file took ~1 s longer for 40 MB less (docs/decisions.md).
    False where the C library has no `mallopt` (musl, macOS).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))

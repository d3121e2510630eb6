"""How the index owner and the workers allocate: memory they free goes back to the system.

PyArrow's default pool (mimalloc in the wheels) keeps memory it has freed, so a process's
RSS stays at its largest batches long after Arrow released them. Workers build and drop Arrow
batches all day and the index owner streams exports and IOC hunts, so both allocate with the
C library, which gives the memory back, and are no slower for it (worker peaks:
`bench/large_files.py --rules`; owner: `bench/export.py`).

The C library (glibc) in turn keeps what it serves from its heap. It maps large blocks on
their own and unmaps them when freed, but "large" rises, up to 32 MiB, each time such a block
is freed; after the first few export chunks (tens of MB of lines each) every block was served
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

    With the rising threshold the owner's heap keeps every freed export chunk
    (`bench/export.py` prints the peak); fixed, each large block is mapped and faulted anew,
    which costs some system time. Not in workers: their Arrow buffers grow by doubling, so
    there it costs parse time for little memory (docs/decisions.md, "Exports are written by
    ClickHouse, in chunks").
    False where the C library has no `mallopt` (musl, macOS).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))

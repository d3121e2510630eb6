"""Hand the kernel back the pages of a mapped native library that this process does not use.

chDB's library is hundreds of MB of code and read-only data. Opening a session touches pages
all over it (static initialisers of every function and format), and on kernels whose page
cache holds large folios (ext4 since Linux 6.16) each touch maps a whole folio: most of the
file ends up resident in the owner, most of it never used again. `MADV_PAGEOUT` over the
library's read-only mappings drops them; what the owner then uses faults back in
(`bench/large_files.py` prints the owner's RSS and its private part).

The advice never changes memory contents (dirty and anonymous pages are left alone, and a
page other processes map stays), so it is safe at any time; the cost is one call and
re-reading the pages that are used again.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
from pathlib import Path

logger = logging.getLogger(__name__)

MADV_PAGEOUT = getattr(mmap, "MADV_PAGEOUT", 21)


def _read_only_ranges(library: str, maps: Path) -> list[tuple[int, int]]:
    """(start, end) of each mapping of a file whose name ends with `library`, not writable."""
    ranges: list[tuple[int, int]] = []
    for line in maps.read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and parts[5].endswith(library) and "w" not in parts[1]:
            start, end = (int(bound, 16) for bound in parts[0].split("-"))
            ranges.append((start, end))
    return ranges


def page_out_library(library: str, maps: Path = Path("/proc/self/maps")) -> int:
    """Advise the kernel to reclaim the read-only pages of `library` mapped here; returns
    the bytes advised (0 where the platform has no /proc or madvise)."""
    try:
        ranges = _read_only_ranges(library, maps)
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return 0
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    advised = 0
    for start, end in ranges:
        if libc.madvise(start, end - start, MADV_PAGEOUT) == 0:
            advised += end - start
        else:
            logger.debug("madvise(PAGEOUT) refused: errno %d", ctypes.get_errno())
    return advised

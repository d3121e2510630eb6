"""Settings of Python's cyclic garbage collector for casescope's workloads.

Loading and compiling ~2,400 rules, or unpickling a compiled set, creates a few hundred
thousand long-lived objects; the collector would traverse the growing heap again and
again for nothing (about 20% of compile time, most of a cached load): `paused_gc` pauses it
for the duration. That is safe: any cycle left behind is collected once it is enabled again.

Processing evidence allocates containers by the million (parameter rows for detections and
IOC hits, parsed fields), nearly all freed by reference counting. With the default threshold
(700) a worker collects the young generation hundreds of times per thousand small files, for
objects reference counting frees anyway; `tune_collector` collects it every YOUNG_THRESHOLD
allocations instead (`bench/bulk.py`, the workers' CPU).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 20_000
OLDER_THRESHOLD = 20


def tune_collector() -> None:
    """Fewer, larger collections for a long-running process that allocates in bulk."""
    gc.set_threshold(YOUNG_THRESHOLD, OLDER_THRESHOLD, OLDER_THRESHOLD)


@contextmanager
def paused_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()

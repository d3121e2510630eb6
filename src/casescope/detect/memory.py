"""Pause Python's cyclic garbage collector around bulk object creation.

Loading and compiling ~2,400 rules, or unpickling a compiled set, creates a few hundred
thousand long-lived objects; the collector would traverse the growing heap again and
again for nothing (about 20% of compile time, most of a cached load). Pausing it for the
duration is safe: any cycle left behind is collected once it is enabled again.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()

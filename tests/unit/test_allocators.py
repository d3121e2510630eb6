"""glibc's rising mmap threshold, and `return_large_blocks`, which fixes it (the owner's
exports: docs/decisions.md, "Exports are written by ClickHouse")."""

from __future__ import annotations

import subprocess
import sys

import pytest

#: In a fresh process: 3 rounds of 40 Arrow buffers of 8 MiB with small objects kept between
#: them (as an export's chunks and its Python objects), all buffers freed; prints how many MB
#: of anonymous memory stay resident.
_FREED_BUT_RESIDENT = """
import ctypes, sys
import pyarrow as pa
from casescope.allocators import return_large_blocks, use_system_arrow_pool

def anon_mb():
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(status["RssAnon"].split()[0]) / 1024

use_system_arrow_pool()
if sys.argv[1] == "fixed":
    assert return_large_blocks()
before, kept = anon_mb(), []
for _ in range(3):
    buffers = []
    for _ in range(40):
        buffer = pa.allocate_buffer(8 * 2**20)
        ctypes.memset(buffer.address, 1, buffer.size)
        buffers.append(buffer)
        kept.append(bytearray(20_000))
    del buffers
print(anon_mb() - before)
"""


def _resident_after_free(mode: str) -> float:
    proc = subprocess.run(
        [sys.executable, "-c", _FREED_BUT_RESIDENT, mode], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return float(proc.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_large_blocks_go_back_to_the_system() -> None:
    """With glibc's default, the 8 MiB blocks freed after the first are served from its heap
    and stay resident (~450 MB measured); with the threshold fixed, ~2 MB of small objects."""
    assert _resident_after_free("default") > 200
    assert _resident_after_free("fixed") < 40

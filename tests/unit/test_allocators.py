"""glibc's heap in the index owner: multi-MB blocks are mapped and given back, not kept."""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
import sys

import pytest

#: Frees 6 MiB blocks, then holds 24 more, each followed by a small live block (so a heap
#: cannot shrink from its top), frees them and prints the heap's size (glibc's mallinfo2).
_CHURN = """
import ctypes, sys
from casescope.allocators import limit_glibc_heap

class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks",
        "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
if sys.argv[1] == "fixed":
    assert limit_glibc_heap()
for _ in range(4):
    block = bytearray(6 << 20)
    del block
blocks, pins = [], []
for _ in range(24):
    blocks.append(bytearray(6 << 20))
    pins.append(bytearray(64 << 10))
del blocks
print(libc.mallinfo2().arena >> 20)
"""


def _heap_mb_after_churn(mode: str) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", _CHURN, mode], capture_output=True, text=True, check=True
    )
    return int(proc.stdout)


@pytest.mark.skipif(
    not hasattr(ctypes.CDLL(ctypes.util.find_library("c")), "mallinfo2"), reason="not glibc"
)
def test_large_blocks_leave_the_heap_once_freed() -> None:
    assert _heap_mb_after_churn("dynamic") > 100  # glibc's default keeps them: 24 x 6 MiB
    assert _heap_mb_after_churn("fixed") < 16

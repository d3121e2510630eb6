"""Read a file line by line in binary with a hard cap on line length.

A line longer than the cap is skipped without ever being held in memory whole: the reader
drops bytes until the next newline and reports the line's number and size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

READ_SIZE = 1024 * 1024


@dataclass(frozen=True)
class Line:
    number: int  # 1-based
    data: bytes | None  # None when the line was over the cap
    size: int


def read_lines(path: Path, max_line_bytes: int) -> Iterator[Line]:
    number = 0
    pending = bytearray()
    oversize = 0  # bytes dropped from the current over-long line
    with path.open("rb") as handle:
        while chunk := handle.read(READ_SIZE):
            start = 0
            while (end := chunk.find(b"\n", start)) != -1:
                number += 1
                piece = chunk[start:end]
                if oversize or len(pending) + len(piece) > max_line_bytes:
                    yield Line(number, None, oversize + len(pending) + len(piece))
                else:
                    yield Line(number, bytes(pending + piece), len(pending) + len(piece))
                pending.clear()
                oversize = 0
                start = end + 1
            rest = chunk[start:]
            if oversize or len(pending) + len(rest) > max_line_bytes:
                oversize += len(pending) + len(rest)
                pending.clear()
            else:
                pending += rest
    if pending or oversize:
        number += 1
        size = oversize + len(pending)
        yield Line(number, None if oversize else bytes(pending), size)

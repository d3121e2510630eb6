"""Numbers as people read them, on pages and in the terminal (the API keeps the exact ones)."""

from __future__ import annotations

UNITS = ("bytes", "KB", "MB", "GB", "TB", "PB")
STEP = 1024


def human_size(size: int | None) -> str:
    """`size` bytes in the largest unit it is at least 1 of: `912 bytes`, `1.4 MB`."""
    if size is None:
        return ""
    value = float(size)
    for unit in UNITS:
        if abs(value) < STEP or unit == UNITS[-1]:
            return f"{int(value):,} {unit}" if unit == UNITS[0] else f"{value:,.1f} {unit}"
        value /= STEP
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns at the last unit


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` with thousands separators and its noun in the right number: "1 hit",
    "2,345 hits" (`plural` where adding an "s" is wrong)."""
    word = noun if count == 1 else plural or f"{noun}s"
    return f"{count:,} {word}"

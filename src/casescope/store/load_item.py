"""What the index loads: one file's segment, or a slice of it.

A module of its own, free of the index's imports (chDB, Arrow, the event schema), so that the
metadata-side bookkeeping of loads (store/pieces.py) is cheap to import for commands that
never open the index (bench/cli.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LoadItem:
    """One file's segment to load into the index, or the slice of its events with
    `seq_from <= seq < seq_to` (`seq_to` None: to the end)."""

    case_id: int
    file_id: int
    segment_path: Path
    seq_from: int = 0
    seq_to: int | None = None

    @property
    def is_slice(self) -> bool:
        return self.seq_from > 0 or self.seq_to is not None

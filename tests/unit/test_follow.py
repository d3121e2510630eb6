"""When `ingest` (the index owner while it follows its files) calls the loader."""

from __future__ import annotations

import pytest

from casescope.cli.follow import LOAD_INTERVAL_SECONDS, load_due
from casescope.services.progress import Progress


def _progress(done: int, awaiting: int, pieces: int = 0) -> Progress:
    return Progress(
        total=10,
        done=done,
        failed=0,
        events_estimated=1000,
        events_done=100,
        awaiting_load=awaiting,
        pieces_ready=pieces,
    )


@pytest.mark.parametrize(
    ("progress", "since", "due"),
    [
        (_progress(done=3, awaiting=0), 99.0, False),  # nothing to load
        (_progress(done=3, awaiting=2), 0.1, False),  # small files wait to batch up
        (_progress(done=3, awaiting=2), LOAD_INTERVAL_SECONDS + 0.1, True),
        (_progress(done=3, awaiting=1, pieces=1), 0.1, True),  # a large file's piece: now
        (_progress(done=10, awaiting=2), 0.1, True),  # every file done: load the rest
    ],
)
def test_load_due(progress: Progress, since: float, due: bool) -> None:
    assert load_due(progress, since) is due

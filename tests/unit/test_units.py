"""Numbers as pages write them: sizes in 1024 steps, counts with their noun in number."""

from __future__ import annotations

import pytest

from casescope.units import counted, human_size


@pytest.mark.parametrize(
    ("count", "noun", "plural", "text"),
    [
        (0, "hit", None, "0 hits"),
        (1, "hit", None, "1 hit"),
        (2345, "hit", None, "2,345 hits"),
        (1, "matching event", None, "1 matching event"),
        (3, "match", "matches", "3 matches"),
    ],
)
def test_counted(count: int, noun: str, plural: str | None, text: str) -> None:
    assert counted(count, noun, plural) == text


@pytest.mark.parametrize(
    ("size", "text"),
    [(None, ""), (912, "912 bytes"), (1024, "1.0 KB"), (1_468_006, "1.4 MB"), (5_000, "4.9 KB")],
)
def test_human_size(size: int | None, text: str) -> None:
    assert human_size(size) == text

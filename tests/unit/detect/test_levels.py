"""Sigma levels and statuses: parsed at the edge with a clear error, ordered for filters."""

from __future__ import annotations

import pytest

from casescope.detect.levels import SigmaLevel, SigmaStatus
from casescope.errors import CasescopeError


def test_a_minimum_level_means_that_level_and_every_more_severe_one() -> None:
    assert SigmaLevel.HIGH.and_above() == (SigmaLevel.HIGH, SigmaLevel.CRITICAL)
    assert SigmaLevel.INFORMATIONAL.and_above() == tuple(SigmaLevel)


def test_levels_and_statuses_parse_whatever_the_case() -> None:
    assert SigmaLevel.parse(" High ") is SigmaLevel.HIGH
    assert SigmaStatus.parse("EXPERIMENTAL") is SigmaStatus.EXPERIMENTAL


@pytest.mark.parametrize("text", ["foo", "", "highest", "4", "crit\x00ical", "é" * 500])
def test_unknown_levels_and_statuses_are_clear_errors(text: str) -> None:
    with pytest.raises(CasescopeError, match="level must be one of informational, low"):
        SigmaLevel.parse(text)
    with pytest.raises(CasescopeError, match="status must be one of stable, test"):
        SigmaStatus.parse(text)

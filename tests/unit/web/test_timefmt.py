"""Times shown in the viewer's zone, always with the zone; zone names checked, never paths."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from casescope.errors import CasescopeError
from casescope.services.users import check_timezone
from casescope.web.timefmt import when


def test_times_are_shown_in_the_zone_with_its_name() -> None:
    assert when("2024-03-01T10:00:05Z") == "2024-03-01 10:00:05 UTC"
    assert when("2024-03-01T10:00:05Z", "Europe/Berlin") == "2024-03-01 11:00:05 CET"
    summer = datetime(2024, 7, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert when(summer, "America/New_York", micro=True) == "2024-07-01 06:00:00.123456 EDT"


def test_naive_datetimes_and_epoch_seconds_are_utc() -> None:
    assert when(datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02 03:04:05 UTC"
    assert when(0, "Asia/Tokyo") == "1970-01-01 09:00:00 JST"
    assert when(None) == "" and when("not a time") == "not a time"


@pytest.mark.parametrize(
    "name", ["", "America", "../../etc/passwd", "Europe/Berlin\x00", "x" * 300, "Mars/Olympus"]
)
def test_unknown_zone_names_are_refused_with_a_clear_error(name: str) -> None:
    with pytest.raises(CasescopeError, match="unknown time zone"):
        check_timezone(name)


def test_known_zone_names_pass() -> None:
    assert check_timezone("UTC") == "UTC"
    assert check_timezone("Europe/Berlin") == "Europe/Berlin"

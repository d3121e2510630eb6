"""Times as people read them: in the viewer's zone, always with that zone shown.

Stored times are UTC (index `ts`, DB rows). Pages show them in the user's chosen zone
(`users.timezone`, UTC by default) through the `when` filter, with the zone's abbreviation
after the time (`2024-03-01 11:00:05 CET`), so a time is never shown without its zone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

DEFAULT_ZONE = "UTC"


def _aware(value: datetime | int | float | str) -> datetime | None:
    """A UTC datetime from a datetime (naive = UTC), epoch seconds, or an ISO 8601 string."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def when(
    value: datetime | int | float | str | None, zone: str = DEFAULT_ZONE, micro: bool = False
) -> str:
    """`value` in `zone` as `YYYY-MM-DD HH:MM:SS[.ffffff] ZONE`; "" for None."""
    if value is None or value == "":
        return ""
    moment = _aware(value)
    if moment is None:
        return str(value)
    local = moment.astimezone(ZoneInfo(zone or DEFAULT_ZONE))
    text = local.strftime("%Y-%m-%d %H:%M:%S.%f" if micro else "%Y-%m-%d %H:%M:%S")
    return f"{text} {local.tzname()}"

"""Turn the timestamps found in logs into microseconds since the epoch (UTC).

Accepted: ISO 8601 with or without a zone (naive means UTC), `YYYY-MM-DD HH:MM:SS[.ffffff]`,
a trailing ` UTC`, Windows `MM/DD/YYYY HH:MM:SS [AM|PM]`, and epoch numbers in seconds,
milliseconds, microseconds or nanoseconds (told apart by magnitude). Anything else is None.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_US_FORMATS = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S.%f %p")


def _from_number(value: float) -> int | None:
    magnitude = abs(value)
    if magnitude < 1e11:  # seconds (until year 5138)
        return int(value * 1_000_000)
    if magnitude < 1e14:  # milliseconds
        return int(value * 1_000)
    if magnitude < 1e17:  # microseconds
        return int(value)
    return int(value // 1_000)  # nanoseconds


def _to_us(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND


def _from_text(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if text.endswith(" UTC"):
        text = text[:-4]
    try:
        return _to_us(datetime.fromisoformat(text))
    except ValueError:
        pass
    if len(text) > 26 and text[19] == "." and text[:19].count(":") == 2:  # > 6 fraction digits
        cut = text[:26] + text[text.find("Z", 19) if "Z" in text[19:] else len(text) :]
        try:
            return _to_us(datetime.fromisoformat(cut))
        except ValueError:
            pass
    for fmt in _US_FORMATS:
        try:
            return _to_us(datetime.strptime(text, fmt))
        except ValueError:
            continue
    try:
        return _from_number(float(text))
    except ValueError:
        return None


def to_epoch_us(value: object) -> int | None:
    """Microseconds since the epoch for a timestamp-like value, or None."""
    if type(value) is str:  # the common case first
        try:
            return _to_us(datetime.fromisoformat(value))
        except ValueError:
            return _from_text(value)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return _from_number(value)
    if isinstance(value, str):
        return _from_text(value)
    return None

"""Core columns for flat records (NDJSON, CSV) found by the rules in `fields`."""

from __future__ import annotations

from collections.abc import Mapping

from casescope.parse.batch import CoreValues
from casescope.parse.evtx_event import UINT8_MAX, UINT32_MAX, UINT64_MAX, bounded
from casescope.parse.fields import core_keys
from casescope.parse.report import ParseReport
from casescope.parse.timestamps import to_epoch_us


def _as_int(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        try:
            return int(float(text))
        except ValueError:
            return None


def normalise_flat(
    fields: Mapping[str, str],
    overrides: tuple[tuple[str, str], ...],
    report: ParseReport,
    where: int,
) -> tuple[CoreValues, Mapping[str, str]]:
    """Core values of a flat record; every field stays in `fields` as well."""
    keys = core_keys(fields, overrides)
    values = [fields.get(k) if k else None for k in keys]
    ts_text, event_id, channel, provider, computer, record_id, level, user, sid = values
    ts = to_epoch_us(ts_text) if ts_text else None
    if ts_text and ts is None:
        report.warn(f"line {where}: timestamp {ts_text[:40]!r} not understood")
    core: CoreValues = (
        ts,
        bounded(_as_int(event_id), UINT32_MAX),
        channel or "",
        provider or "",
        computer or "",
        bounded(_as_int(record_id), UINT64_MAX),
        bounded(_as_int(level), UINT8_MAX),
        user or "",
        sid or "",
    )
    return core, fields

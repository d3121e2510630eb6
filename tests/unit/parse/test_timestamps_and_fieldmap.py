"""Timestamp formats (vectorised) and the rules that find core columns in flat records."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from casescope.parse.fieldmap import check_field_map, flatten, resolve
from casescope.parse.timestamps import parse_timestamps, to_epoch_us


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


CASES = [
    ("2019-04-27T15:57:25.868863Z", utc(2019, 4, 27, 15, 57, 25, 868863)),
    ("2019-04-27T15:57:27.0876132Z UTC", utc(2019, 4, 27, 15, 57, 27, 87613)),
    ("2024-03-01T10:00:00+02:00", utc(2024, 3, 1, 8)),
    ("2024-03-01T10:00:00.5-0500", utc(2024, 3, 1, 15, 0, 0, 500000)),
    ("2024-03-01T10:00:00", utc(2024, 3, 1, 10)),
    ("2024-03-01 10:00:00.123456", utc(2024, 3, 1, 10, 0, 0, 123456)),
    ("2024-03-01 10:00:00 UTC", utc(2024, 3, 1, 10)),
    ("2024-03-01T10:00", utc(2024, 3, 1, 10)),
    ("2024-03-01", utc(2024, 3, 1)),
    (" 2024-03-01T10:00:00Z ", utc(2024, 3, 1, 10)),
    ("05/06/2024 07:08:10 PM", utc(2024, 5, 6, 19, 8, 10)),
    ("12/31/2024 12:00:00 AM", utc(2024, 12, 31)),
    ("05/06/2024 19:08:10", utc(2024, 5, 6, 19, 8, 10)),
    ("1709287200", utc(2024, 3, 1, 10)),
    ("1709287200.25", utc(2024, 3, 1, 10, 0, 0, 250000)),
    ("1709287200123", utc(2024, 3, 1, 10, 0, 0, 123000)),
    ("1709287200123456", utc(2024, 3, 1, 10, 0, 0, 123456)),
    ("1709287200123456789", utc(2024, 3, 1, 10, 0, 0, 123456)),
]
BAD = ["yesterday", "2024-13-01T10:00:00", "99999999999999999999999", "31/12/2024", "10:00"]


def test_every_format_in_one_mixed_batch() -> None:
    texts = [text for text, _ in CASES] + BAD + [None, ""]
    parsed = parse_timestamps(texts)
    expected = [moment for _, moment in CASES] + [None] * (len(BAD) + 2)
    assert parsed.values.to_pylist() == expected
    assert (parsed.failed, parsed.example) == (len(BAD), "yesterday")


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_each_format_alone(text: str, expected: datetime) -> None:
    assert parse_timestamps([text]).values.to_pylist() == [expected]


def test_zoned_fast_path_and_empty_batches() -> None:
    parsed = parse_timestamps(["2019-04-27T15:57:25.868863Z"] * 3)
    assert parsed.failed == 0 and parsed.values.null_count == 0
    assert len(parse_timestamps([]).values) == 0
    assert parse_timestamps([None, None]).values.null_count == 2


def test_scalar_form() -> None:
    assert to_epoch_us(1709287200) == 1_709_287_200_000_000
    assert to_epoch_us("2024-03-01T10:00:00Z") == 1_709_287_200_000_000
    assert to_epoch_us("nope") is None and to_epoch_us(True) is None and to_epoch_us(None) is None


def test_resolve_exact_then_case_insensitive_then_mapped() -> None:
    keys = ("TIMESTAMP", "@timestamp", "host.name", "eventid", "Channel")
    ts, event_id, channel, provider, computer, *_ = resolve(keys, ())
    assert (ts, event_id, channel, provider, computer) == (
        "@timestamp",
        "eventid",
        "Channel",
        None,
        "host.name",
    )
    mapped = resolve(keys, check_field_map({"ts": "timestamp", "provider": "Channel"}))
    assert (mapped[0], mapped[3]) == ("TIMESTAMP", "Channel")


def test_nested_evtx_paths_are_candidates() -> None:
    keys = ("Event.System.TimeCreated.#attributes.SystemTime", "Event.System.EventID")
    assert resolve(keys, ())[:2] == keys


def test_flatten() -> None:
    record = {"a": {"b": {"c": 1}}, "l": [1, {"x": None}], "t": False, "n": None, "f": 1e20}
    assert flatten(record, {}) == {"a.b.c": "1", "l": '[1,{"x":null}]', "t": "false", "f": "1e+20"}

"""Correlation rules over detections: event_count, value_count, temporal, temporal_ordered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pyarrow as pa
import pytest
from sigma.correlations import SigmaCorrelationConditionOperator, SigmaCorrelationType

from casescope.detect.correlate import correlate
from casescope.detect.correlations import (
    CorrelationOp,
    CorrelationType,
    detection_frame,
    needed_fields,
)
from casescope.detect.engine import compile_rules
from casescope.detect.load import RuleLoad, load_document
from tests.unit.detect.support import make_batch, rule_text

FAIL = (
    rule_text(
        "  sel: {EventID: 4625}\n  condition: sel",
        "service: security",
        id="00000000-0000-0000-0000-0000000000a1",
    )
    + "name: failed_logon\n"
)
OK = rule_text(
    "  sel: {EventID: 4624}\n  condition: sel",
    "service: security",
    id="00000000-0000-0000-0000-0000000000a2",
)
OK_ID = "00000000-0000-0000-0000-0000000000a2"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def correlation(kind: str, condition: str, extra: str = "") -> str:
    return (
        f"title: {kind}\nid: 00000000-0000-0000-0000-0000000000c0\nlevel: high\n"
        f"correlation:\n  type: {kind}\n  rules: [failed_logon, {OK_ID}]\n"
        f"  group-by: [TargetUserName]\n  timespan: 1m\n  condition: {condition}\n{extra}"
    )


def run(corr_text: str, events: list[tuple[int, int, str, str]]) -> list:
    """events: (seconds after T0, EventID, TargetUserName, IpAddress)."""
    load = RuleLoad()
    for number, text in enumerate((FAIL, OK, corr_text)):
        load_document(f"r{number}.yml", text.encode(), load)
    ruleset = compile_rules(load)
    assert not ruleset.failures, ruleset.failures
    batch = make_batch(
        [
            {"EventID": eid, "Channel": "Security", "TargetUserName": user, "IpAddress": ip}
            for _, eid, user, ip in events
        ]
    )
    times = pa.array([T0 + timedelta(seconds=s) for s, *_ in events], pa.timestamp("us", "UTC"))
    batch = batch.set_column(1, "ts", times)
    names = sorted(set().union(*needed_fields(ruleset.correlations).values()))
    frame = detection_frame(batch, ruleset.evaluate(batch), names)
    return correlate(ruleset.correlations, frame.with_columns(pl.col("seq").alias("event")))


BURST = [(i, 4625, "bob", f"10.0.0.{i % 3}") for i in range(5)] + [(30, 4624, "bob", "10.0.0.9")]


def test_event_count_fires_once_per_burst_and_group() -> None:
    events = [*BURST, (5, 4625, "eve", "1.1.1.1"), (200, 4625, "bob", "1.1.1.1")]
    (hit,) = run(correlation("event_count", "{gte: 5}"), events)
    assert hit.group == {"TargetUserName": "bob"} and hit.value >= 5
    assert hit.events[:5] == [0, 1, 2, 3, 4]


def test_event_count_outside_the_timespan_does_not_fire() -> None:
    events = [(i * 40, 4625, "bob", "1.1.1.1") for i in range(5)]
    assert run(correlation("event_count", "{gte: 3}"), events) == []


def test_value_count_counts_distinct_values() -> None:
    condition = "\n    field: IpAddress\n    gte: 3"
    (hit,) = run(correlation("value_count", condition), BURST)
    assert hit.value == 3
    assert run(correlation("value_count", "\n    field: IpAddress\n    gte: 5"), BURST) == []


@pytest.mark.parametrize(
    ("kind", "events", "fires"),
    [
        ("temporal", [(0, 4624, "bob", ""), (10, 4625, "bob", "")], True),
        ("temporal", [(0, 4624, "bob", ""), (10, 4625, "eve", "")], False),
        ("temporal", [(0, 4624, "bob", ""), (100, 4625, "bob", "")], False),
        ("temporal_ordered", [(0, 4625, "bob", ""), (10, 4624, "bob", "")], True),
        ("temporal_ordered", [(0, 4624, "bob", ""), (10, 4625, "bob", "")], False),
    ],
)
def test_temporal(kind: str, events: list, fires: bool) -> None:
    assert bool(run(correlation(kind, "{gte: 2}"), events)) == fires


def test_aliases_group_different_fields_together() -> None:
    aliases = (
        "  aliases:\n    account:\n      failed_logon: TargetUserName\n"
        "      00000000-0000-0000-0000-0000000000a2: IpAddress\n"
    )
    text = correlation("temporal", "{gte: 2}").replace("[TargetUserName]", "[account]") + aliases
    (hit,) = run(text, [(0, 4625, "x", ""), (5, 4624, "nobody", "x")])
    assert hit.group == {"account": "x"}


def test_unsupported_correlations_are_failures() -> None:
    load = RuleLoad()
    for number, text in enumerate((FAIL, correlation("value_sum", "\n    field: X\n    gte: 3"))):
        load_document(f"r{number}.yml", text.encode(), load)
    ruleset = compile_rules(load)
    assert ruleset.correlations == []
    assert any("correlation" in f.reason for f in ruleset.failures)


def test_types_and_operators_are_pysigmas_names() -> None:
    """`CorrelationType(name)` reads pySigma's type names: each one casescope evaluates is
    one of them, and every condition operator pySigma parses has its `CorrelationOp`."""
    assert set(CorrelationType) <= {t.name.lower() for t in SigmaCorrelationType}
    operators = {o.name.lower() for o in SigmaCorrelationConditionOperator}
    assert operators == set(CorrelationOp)

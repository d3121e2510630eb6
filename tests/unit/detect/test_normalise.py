"""Rules as Hayabusa writes them: what pySigma refuses for form only loads, with warnings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow as pa

from casescope.detect.correlate import correlate
from casescope.detect.correlations import detection_frame, needed_fields
from casescope.detect.details import render_details
from casescope.detect.engine import compile_rules
from casescope.detect.load import RuleLoad, load_document
from casescope.detect.normalise import UNBOUNDED
from casescope.detect.ruleset_config import aliases_for, read_eventkey_aliases
from tests.unit.detect.support import fired, make_batch

HEAD = """title: Hayabusa-style rule
author: test
date: 2024-01-01
level: medium
status: test
logsource: {product: windows, service: security}
"""
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _load(text: str) -> RuleLoad:
    load = RuleLoad()
    load_document("hayabusa/r.yml", text.encode(), load)
    return load


def _events(*events: dict[str, object]) -> pa.RecordBatch:
    return make_batch([{"Channel": "Security", **e} for e in events])


def test_form_problems_are_warnings_not_refusals() -> None:
    text = HEAD + (
        "id: b27292f1a-18b3-4433-b340-151874a7d4e8\n"  # one character too many
        "tags: [sysmon, lolbas, attack.t1003]\n"
        "references: https://example.com/one-string\n"
        "details: 'User: %TargetUserName% ¦ Level: %ImpersonationLevel%'\n"
        "detection:\n  selection:\n    EventID: 4624\n    ImpersonationLevel|contains: 1833\n"
        "    CommandLine|contains|all: [recoveryenabled, no]\n"
    )
    load = _load(text)
    assert not load.failures
    (loaded,) = load.rules
    assert loaded.sigma_id == "b27292f1a-18b3-4433-b340-151874a7d4e8"
    assert loaded.tags == ["sysmon", "lolbas", "attack.t1003"]
    assert [w.split(":")[0].split(" '")[0] for w in loaded.warnings] == [
        "references is one string, not a list",
        "id",
        "tags without a namespace",
        "ImpersonationLevel|contains",
        "no condition",
    ]
    ruleset = compile_rules(load)
    (rule,) = ruleset.rules
    assert (rule.id, rule.tags[:2]) == (
        "b27292f1a-18b3-4433-b340-151874a7d4e8",
        ["sysmon", "lolbas"],
    )
    assert rule.details.startswith("User: %TargetUserName%")
    batch = _events(
        {"EventID": 4624, "ImpersonationLevel": "%%1833", "CommandLine": "recoveryenabled no"},
        {"EventID": 4624, "ImpersonationLevel": "%%1833", "CommandLine": "recoveryenabled false"},
    )
    assert fired(ruleset, batch) == [0]  # `no` is the text "no", not the boolean false


def test_a_count_condition_becomes_a_correlation() -> None:
    text = HEAD + (
        "id: 4574194d-e7ca-4356-a95c-21b753a1787e\n"
        "detection:\n  selection:\n    EventID: 4625\n"
        "  condition: selection | count(TargetUserName) by IpAddress > 2\n  timeframe: 5m\n"
    )
    load = _load(text)
    assert not load.failures and len(load.rules) == len(load.correlations) == 1
    ruleset = compile_rules(load)
    (corr,) = ruleset.correlations
    assert corr.id == "4574194d-e7ca-4356-a95c-21b753a1787e"  # the hit is the rule's own
    assert (corr.type, corr.group_by, corr.field, corr.op, corr.count, corr.timespan) == (
        "value_count",
        ["IpAddress"],
        "TargetUserName",
        "gt",
        2,
        300,
    )
    (base,) = ruleset.rules
    assert base.level == "informational" and base.title.endswith("(counted events)")
    spray = [(s, f"user{s}", "10.0.0.9") for s in range(4)] + [(9, "x", "10.0.0.1")]
    batch = _events(
        *({"EventID": 4625, "TargetUserName": u, "IpAddress": ip} for _, u, ip in spray)
    )
    times = pa.array([T0 + timedelta(seconds=s) for s, *_ in spray], pa.timestamp("us", "UTC"))
    batch = batch.set_column(1, "ts", times)
    names = sorted(set().union(*needed_fields(ruleset.correlations).values()))
    frame = detection_frame(batch, ruleset.evaluate(batch), names)
    hits = correlate(ruleset.correlations, frame.with_columns(pl.col("seq").alias("event")))
    assert [(h.group, h.value) for h in hits] == [({"IpAddress": "10.0.0.9"}, 3)]


def test_a_count_without_timeframe_spans_the_whole_log() -> None:
    text = HEAD + (
        "id: 00000000-0000-4000-8000-00000000c0c1\n"
        "detection:\n  selection:\n    EventID: 4625\n  condition: selection | count() > 10\n"
    )
    (corr,) = compile_rules(_load(text)).correlations
    assert (corr.type, corr.group_by, corr.op, corr.count) == ("event_count", [], "gt", 10)
    assert corr.timespan == int(UNBOUNDED.removesuffix("d")) * 86_400


def test_two_detections_without_a_condition_are_still_refused() -> None:
    text = HEAD + "detection:\n  a: {EventID: 1}\n  b: {EventID: 2}\n"
    load = _load(text)
    assert not load.rules and "at least one condition" in load.failures[0].reason


def test_details_render_from_the_event() -> None:
    fields = {"Threat Name": "HackTool:Win32/Mimikatz", "Computer": "WS1", "Data": "a\nb\nc"}
    template = "Threat: %ThreatName% ¦ Host: %ComputerName% ¦ Second: %Data[2]% ¦ %Missing%"
    aliases = {"ComputerName": "Event.System.Computer"}
    assert render_details(template, fields, aliases) == (
        "Threat: HackTool:Win32/Mimikatz ¦ Host: WS1 ¦ Second: b ¦ n/a"
    )
    assert render_details("%Data%", {"Data": "a\r\nb"}) == "a b"


def test_a_rule_sets_field_aliases(data_dir: Path) -> None:
    aliases = read_eventkey_aliases(data_dir / "hayabusa-rules")
    assert aliases["ComputerName"] == "Event.System.Computer"
    assert "CommandLine" not in aliases  # its own name: nothing to map
    text = HEAD.replace("service: security", "service: system") + (
        "id: 00000000-0000-4000-8000-00000000a11a\n"
        "detection:\n  selection:\n    EventID: 104\n    ComputerName: WS1\n"
        "    LogFileClearedChannel: Security\n  condition: selection\n"
    )
    load = _load(text)
    (loaded,) = load.rules
    loaded.aliases = aliases_for(loaded.rule, aliases)
    assert set(loaded.aliases) == {"ComputerName", "LogFileClearedChannel"}
    batch = make_batch(
        [  # the System log's 104: UserData names the log that was cleared
            {"EventID": 104, "Channel": "System", "Computer": "WS1", "Channel ": "Security"},
            {"EventID": 104, "Channel": "System", "Computer": "WS1", "Channel ": "Setup"},
            {"EventID": 104, "Channel": "System", "Computer": "WS2", "Channel ": "Security"},
        ]
    )
    assert fired(compile_rules(load), batch) == [0]


OALERTS = HEAD + (
    "id: 00000000-0000-4000-8000-0000000000a1\n"
    "detection:\n  selection_basic:\n    Channel: OAlerts\n    EventID: 300\n"
    "  condition: selection_basic\n"
)


def test_hayabusa_rules_run_as_written() -> None:
    """Hayabusa reads `logsource` as documentation: this rule says `service: security` but
    names its channel itself. Under the log-source pipelines it could never match (two
    channels at once) and is refused as such; as written it runs on OAlerts events."""
    refused = compile_rules(_load(OALERTS))
    assert not refused.rules and "can never match" in refused.failures[0].reason
    load = _load(OALERTS)
    load.rules[0].as_written = True
    batch = make_batch(
        [{"EventID": 300, "Channel": "OAlerts"}, {"EventID": 300, "Channel": "Security"}]
    )
    assert fired(compile_rules(load), batch) == [0]


def test_contradictory_conditions_are_refused() -> None:
    text = HEAD + (
        "id: 00000000-0000-4000-8000-0000000000a2\n"
        "detection:\n  a: {EventID: 4624}\n  b: {EventID: 4625}\n  condition: a and b\n"
    )
    compiled = compile_rules(_load(text))
    assert not compiled.rules and "can never match" in compiled.failures[0].reason

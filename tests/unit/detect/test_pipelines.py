"""Log sources become Channel/EventID conditions through pySigma's pipelines."""

from __future__ import annotations

from tests.unit.detect.support import SYSMON, compile_text, fired, make_batch, rule_text

SELECTION = "  sel: {Image|endswith: '\\x.exe'}\n  condition: sel"
EVENTS = [
    {"EventID": 3, "Channel": SYSMON, "Image": r"C:\x.exe"},
    {"EventID": 3, "Channel": "Application", "Image": r"C:\x.exe"},
    {"EventID": 1, "Channel": SYSMON, "Image": r"C:\x.exe"},
    {"EventID": 4104, "Channel": "Microsoft-Windows-PowerShell/Operational", "Image": r"C:\x.exe"},
    {"EventID": 4104, "Channel": "PowerShellCore/Operational", "Image": r"C:\x.exe"},
    {
        "EventID": 1116,
        "Channel": "Microsoft-Windows-Windows Defender/Operational",
        "Image": r"C:\x.exe",
    },
]


def _rule(logsource: str):  # type: ignore[no-untyped-def]
    ruleset = compile_text(rule_text(SELECTION, logsource))
    return ruleset.rules[0], fired(ruleset, make_batch(EVENTS))


def test_a_sysmon_only_category_requires_its_channel_and_event_id() -> None:
    rule, hits = _rule("category: network_connection")
    assert rule.variants == ("sysmon",)
    assert (rule.event_ids, rule.channels) == ({3}, {SYSMON.lower()})
    assert hits == [0]


def test_powershell_categories_map_to_both_channels() -> None:
    rule, hits = _rule("category: ps_script")
    assert rule.event_ids == {4104}
    assert hits == [3, 4]


def test_a_service_maps_to_its_channel() -> None:
    rule, hits = _rule("service: windefend")
    assert rule.event_ids is None and rule.channels is not None
    assert hits == [5]


def test_a_category_no_pipeline_knows_runs_on_every_event() -> None:
    rule, hits = _rule("category: antivirus")
    assert rule.variants == ("generic",)
    assert rule.event_ids is None and rule.channels is None
    assert hits == [0, 1, 2, 3, 4, 5]

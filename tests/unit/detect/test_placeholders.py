"""`|expand` placeholders: a rule needs the analyst's values, then compiles and matches them."""

from __future__ import annotations

from pathlib import Path

from casescope.detect.engine import compile_rules
from casescope.detect.load import RuleLoad, load_document, load_rules
from casescope.detect.placeholders import parse_values, rule_placeholders
from tests.unit.detect.support import RULE_ID, fired, make_batch, rule_text

HOSTS = rule_text(
    "  selection:\n    EventID: 4624\n    Computer|expand: '%known_dcs%'\n"
    "  filter:\n    TargetUserName|contains|expand: '%service_accounts%'\n"
    "  condition: selection and not filter",
    logsource="service: security",
)
PLAIN = rule_text(
    "  selection:\n    EventID: 4625\n  condition: selection",
    logsource="service: security",
    id="00000000-0000-0000-0000-000000000002",
)
EVENTS = make_batch(
    [
        {"EventID": 4624, "Channel": "Security", "Computer": "DC01", "TargetUserName": "alice"},
        {"EventID": 4624, "Channel": "Security", "Computer": "dc02", "TargetUserName": "bob"},
        {"EventID": 4624, "Channel": "Security", "Computer": "WS01", "TargetUserName": "carol"},
        {"EventID": 4624, "Channel": "Security", "Computer": "DC01", "TargetUserName": "svc_bk"},
    ]
)


def _load(*texts: str) -> RuleLoad:
    load = RuleLoad()
    for number, text in enumerate(texts):
        load_document(f"rule{number}.yml", text.encode(), load)
    assert not load.failures
    return load


def test_a_rule_without_values_is_listed_with_what_it_needs() -> None:
    compiled = compile_rules(_load(HOSTS, PLAIN))
    assert [rule.id for rule in compiled.rules] == ["00000000-0000-0000-0000-000000000002"]
    assert [f.reason for f in compiled.failures] == [
        "needs placeholder values: %known_dcs%, %service_accounts%"
    ]
    partly = compile_rules(_load(HOSTS), {"known_dcs": ["DC01"]})
    assert [f.reason for f in partly.failures] == ["needs placeholder values: %service_accounts%"]


def test_values_make_it_compile_and_match() -> None:
    values = {"known_dcs": ["DC01", "DC02"], "service_accounts": ["svc_"]}
    compiled = compile_rules(_load(HOSTS), values)
    assert not compiled.failures
    assert fired(compiled, EVENTS) == [0, 1]  # any known DC (any case), not the service account


def test_the_content_hash_follows_the_values_of_the_rule_only() -> None:
    def hashes(values: dict[str, list[str]]) -> dict[str, str]:
        compiled = compile_rules(_load(HOSTS, PLAIN), values)
        return {rule.id: rule.content_hash for rule in compiled.rules}

    one = hashes({"known_dcs": ["DC01"], "service_accounts": ["svc_"]})
    two = hashes({"known_dcs": ["DC01", "DC02"], "service_accounts": ["svc_"], "other": ["x"]})
    assert one[RULE_ID] != two[RULE_ID]
    plain = "00000000-0000-0000-0000-000000000002"
    assert one[plain] == two[plain] == hashes({})[plain]


def test_sigmahq_rules_with_placeholders(sigma_dir: Path) -> None:
    folder = sigma_dir / "rules-emerging-threats" / "2026" / "Exploits" / "CVE-2026-54121"
    load = load_rules(folder)
    assert {name for r in load.rules for name in rule_placeholders(r.rule)} == {"known_cdcs"}
    without = compile_rules(load)
    assert {f.reason for f in without.failures} == {"needs placeholder values: %known_cdcs%"}
    compiled = compile_rules(load, {"known_cdcs": ["dc01.corp.example", "10.0.0.5"]})
    assert not compiled.failures and len(compiled.rules) == len(load.rules) == 3


def test_values_are_parsed_from_a_comma_list() -> None:
    assert parse_values(" DC01, DC02,,DC01 ,10.0.0.5 ") == ["DC01", "DC02", "10.0.0.5"]

"""The ATT&CK matrix of a case's rules, and its ATT&CK Navigator layer."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from casescope.detect.attack import TACTICS, parse_tags
from casescope.services.attack_matrix import build_matrix, navigator_layer
from casescope.services.detections import RuleHits, RuleInfo

TECHNIQUE_ID = re.compile(r"^T\d{4}(\.\d{3})?$")


def _hits(n: int, title: str, tags: str, level: str = "high", rule_id: int = 0) -> RuleHits:
    rule = RuleInfo(
        id=rule_id or n,
        rule_uid=f"uid-{title}",
        title=title,
        level=level,
        status="test",
        tags=tuple(tags.split()),
        attack=parse_tags(tags),
        description="",
    )
    return RuleHits(rule, hits=n)


RULES = [
    _hits(10, "Encoded PowerShell", "attack.execution attack.t1059.001", "medium"),
    _hits(5, "Mimikatz", "attack.credential-access attack.t1003.001 attack.s0002", "critical"),
    # two tactics, two techniques: counted under each pair
    _hits(
        3,
        "Service install",
        "attack.persistence attack.privilege-escalation attack.t1543.003 attack.t1569.002",
        "high",
    ),
    _hits(2, "Cmd", "attack.execution attack.t1059", "low"),
    _hits(7, "Tactic only", "attack.execution", "informational"),
    _hits(4, "Technique only", "attack.t1021", "high"),
    _hits(6, "Unmapped", "cve.2021-1234 attack.g0016", "high"),
    _hits(1, "Old tactic name", "attack.defense_evasion attack.t1562.001", "low"),
]


def _column(matrix, short):  # type: ignore[no-untyped-def]
    return next(c for c in matrix.columns if c.tactic is not None and c.tactic.short == short)


def test_tactics_are_columns_in_matrix_order_with_techniques_under_them() -> None:
    matrix = build_matrix(RULES)
    assert [c.tactic.short for c in matrix.columns[: len(TACTICS)]] == [t.short for t in TACTICS]
    execution = _column(matrix, "execution")
    assert (execution.hits, execution.rules) == (19, 3)
    assert [(c.technique, c.hits, c.level) for c in execution.techniques] == [
        ("T1059.001", 10, "medium"),
        ("T1059", 2, "low"),
        ("", 7, "informational"),  # the tactic's rules without a technique, last
    ]
    assert [(c.technique, c.hits) for c in _column(matrix, "credential-access").techniques] == [
        ("T1003.001", 5)
    ]


def test_a_rule_with_several_tactics_counts_under_each() -> None:
    matrix = build_matrix(RULES)
    for short in ("persistence", "privilege-escalation"):
        column = _column(matrix, short)
        assert (column.hits, column.rules) == (3, 1)
        assert {(c.technique, c.hits) for c in column.techniques} == {
            ("T1543.003", 3),
            ("T1569.002", 3),
        }
    assert _column(matrix, "stealth").techniques[0].technique == "T1562.001"
    assert _column(matrix, "exfiltration").hits == 0  # empty tactics are still columns


def test_rules_without_a_tactic_or_without_attack_tags() -> None:
    matrix = build_matrix(RULES)
    untactic = matrix.columns[-1]
    assert untactic.tactic is None and [c.technique for c in untactic.techniques] == ["T1021"]
    assert (matrix.unmapped_hits, matrix.unmapped_rules) == (6, 1)
    assert len(build_matrix(RULES[:2]).columns) == len(TACTICS)  # no "no tactic" column


def test_a_cell_takes_the_highest_level_of_its_rules() -> None:
    matrix = build_matrix(
        [
            _hits(1, "a", "attack.execution attack.t1059", "low", 1),
            _hits(1, "b", "attack.execution attack.t1059", "critical", 2),
            _hits(1, "c", "attack.execution attack.t1059", "", 3),
        ]
    )
    (cell,) = _column(matrix, "execution").techniques
    assert (cell.hits, cell.rules, cell.level) == (3, 3, "critical")


def test_navigator_layer_structure() -> None:
    layer = navigator_layer(RULES, "case <x>", "from casescope", datetime(2024, 5, 1, tzinfo=UTC))
    assert json.loads(json.dumps(layer)) == layer  # plain JSON
    assert layer["versions"] == {"navigator": "5.1.0", "layer": "4.5"}
    assert layer["domain"] == "enterprise-attack" and layer["name"] == "case <x>"
    techniques = {t["techniqueID"]: t for t in layer["techniques"]}
    assert all(TECHNIQUE_ID.match(t) for t in techniques)
    assert set(techniques) == {
        "T1059.001", "T1059", "T1003.001", "T1543.003", "T1569.002", "T1021", "T1562.001",
    }  # fmt: skip
    assert techniques["T1059.001"]["score"] == 10
    assert techniques["T1543.003"]["score"] == 3  # one rule, two tactics: counted once
    assert techniques["T1003.001"]["comment"] == "Mimikatz (5)"
    assert techniques["T1059"]["showSubtechniques"] is True
    assert "showSubtechniques" not in techniques["T1021"]
    gradient = layer["gradient"]
    assert len(gradient["colors"]) >= 2 and gradient["minValue"] == 0
    assert gradient["maxValue"] == 10 > gradient["minValue"]
    assert {"name": "generated", "value": "2024-05-01T00:00:00Z"} in layer["metadata"]


def test_navigator_layer_of_nothing_is_still_valid() -> None:
    layer = navigator_layer([], "empty")
    assert layer["techniques"] == []
    assert layer["gradient"]["maxValue"] > layer["gradient"]["minValue"]


def test_navigator_comment_names_rules_by_hits_and_says_how_many_more() -> None:
    many = [_hits(i, f"rule {i:02}", "attack.t1059", rule_id=i) for i in range(1, 26)]
    (entry,) = navigator_layer(many, "many")["techniques"]
    assert entry["score"] == sum(range(1, 26))
    assert entry["comment"].startswith("rule 25 (25); rule 24 (24)")
    assert entry["comment"].endswith("; and 5 more rules")

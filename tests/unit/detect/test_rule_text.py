"""A rule's description, detection block and ATT&CK tags, as the event page shows them."""

from __future__ import annotations

from pathlib import Path

from casescope.detect.rule_text import AttackKind, AttackTag, attack_tags, logic_block, rule_text

RULE = """\
title: Potential Credential Dumping Activity Via LSASS
id: 5ef9853e-4d0e-4a70-846f-a9ca37d876da
description: |
    Detects process access requests to LSASS.
tags:
    - attack.credential-access
    - attack.t1003.001
    - attack.s0002
logsource:
    category: process_access
detection:
    selection:
        TargetImage|endswith: '\\lsass.exe'
        GrantedAccess|contains:
            - '0x1038'
            # - '0x1010'   # too many false positives
    condition: selection
falsepositives:
    - Unknown
level: medium
"""


def test_description_and_the_detection_block_as_written() -> None:
    text = rule_text(RULE)
    assert text.description == "Detects process access requests to LSASS."
    assert text.logic.startswith("detection:\n    selection:")
    assert "# - '0x1010'   # too many false positives" in text.logic  # comments kept
    assert text.logic.endswith("condition: selection")
    assert "falsepositives" not in text.logic and "level" not in text.logic


def test_correlation_rules_show_their_correlation_block() -> None:
    text = "title: x\ncorrelation:\n  type: event_count\n  rules: [a]\nlevel: high\n"
    assert logic_block(text) == "correlation:\n  type: event_count\n  rules: [a]"


def test_unreadable_yaml_still_gives_what_it_can() -> None:
    assert rule_text("detection: [unclosed\n").description == ""


def test_attack_tags_sorted_into_kinds() -> None:
    tags = attack_tags("attack.credential-access attack.t1003.001 attack.s0002 attack.g0016 cve.x")
    assert tags == [
        AttackTag(AttackKind.TACTIC, "credential access"),
        AttackTag(AttackKind.TECHNIQUE, "T1003.001"),
        AttackTag(AttackKind.SOFTWARE, "S0002"),
        AttackTag(AttackKind.GROUP, "G0016"),
    ]
    assert attack_tags(["attack.defense_evasion", "attack.T1059"]) == [
        AttackTag(AttackKind.TACTIC, "defense evasion"),
        AttackTag(AttackKind.TECHNIQUE, "T1059"),
    ]


def test_every_sample_rule_has_a_detection_block(sigma_dir: Path) -> None:
    rules = sorted((sigma_dir / "rules" / "windows" / "process_access").glob("*.yml"))
    assert rules
    for path in rules:
        text = rule_text(path.read_text(encoding="utf-8"))
        assert text.logic.startswith("detection:"), path
        assert "condition:" in text.logic, path

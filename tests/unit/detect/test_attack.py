"""ATT&CK in Sigma tags: tactics, techniques and sub-techniques, and tags that are neither."""

from __future__ import annotations

import pytest

from casescope.detect.attack import (
    TACTICS,
    parent,
    parse_tags,
    tactic,
    technique,
    technique_url,
)


def test_the_enterprise_tactics_in_matrix_order() -> None:
    assert [t.id for t in TACTICS] == [
        "TA0043", "TA0042", "TA0001", "TA0002", "TA0003", "TA0004", "TA0005", "TA0112",
        "TA0006", "TA0007", "TA0008", "TA0009", "TA0011", "TA0010", "TA0040",
    ]  # fmt: skip
    assert len({t.short for t in TACTICS}) == len({t.id for t in TACTICS}) == 15
    assert tactic("execution").url == "https://attack.mitre.org/tactics/TA0002/"


@pytest.mark.parametrize(
    ("text", "short"),
    [
        ("execution", "execution"),
        ("Execution", "execution"),
        ("initial_access", "initial-access"),  # Sigma's older spelling
        ("Initial Access", "initial-access"),
        ("TA0011", "command-and-control"),
        ("ta0112", "defense-impairment"),
        ("defense-evasion", "stealth"),  # renamed by MITRE: TA0005 is Stealth now
        ("defense_evasion", "stealth"),
        ("t1059", None),
        ("exfil", None),
        ("", None),
    ],
)
def test_tactic_names_ids_and_old_spellings(text: str, short: str | None) -> None:
    found = tactic(text)
    assert (found.short if found else None) == short


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("t1059", "T1059"),
        ("T1059.001", "T1059.001"),
        (" t1003.001 ", "T1003.001"),
        ("t1059.1", None),
        ("t10591", None),
        ("t1059.0011", None),
        ("g0016", None),
        ("T1059/001", None),
    ],
)
def test_technique_ids(text: str, expected: str | None) -> None:
    assert technique(text) == expected


def test_sub_techniques_link_to_their_page_and_parent() -> None:
    assert technique_url("T1059.001") == "https://attack.mitre.org/techniques/T1059/001/"
    assert technique_url("T1059") == "https://attack.mitre.org/techniques/T1059/"
    assert parent("T1059.001") == "T1059" and parent("T1059") == "T1059"


def test_parse_tags_sorts_out_tactics_techniques_and_the_rest() -> None:
    tags = (
        "attack.Execution attack.privilege-escalation attack.T1059.001 attack.t1059 "
        "attack.g0016 attack.s0002 cve.2021-1234 car.2016-04-005 detection.emerging-threats "
        "ATTACK.persistence attack.stealth attack. attack.t1059.001"
    )
    parsed = parse_tags(tags)
    assert [t.short for t in parsed.tactics] == [
        "execution",
        "persistence",
        "privilege-escalation",
        "stealth",
    ]  # matrix order, not tag order
    assert parsed.techniques == ("T1059", "T1059.001")  # deduplicated, upper case
    assert parsed.others == ("G0016", "S0002")
    assert parse_tags(["cve.2021-1234", "attack.g0016"]).techniques == ()
    assert parse_tags("").tactics == () and parse_tags([]).techniques == ()


def test_a_technique_filter_takes_its_sub_techniques() -> None:
    parsed = parse_tags("attack.t1059.001 attack.t1003")
    assert parsed.has_technique("T1059") and parsed.has_technique("T1059.001")
    assert parsed.has_technique("T1003") and not parsed.has_technique("T1003.001")
    assert not parsed.has_technique("T1059.003") and not parsed.has_technique("T105")

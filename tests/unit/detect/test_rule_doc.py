"""What the detection views read from a rule's YAML: description, references, logic."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

from casescope.detect.rule_doc import describe, nth_of_path

RULE = dedent(
    """\
    title: Encoded PowerShell
    id: 11111111-0000-4000-8000-000000000001
    description: |
      Detects powershell -enc.
    author: Someone, Other
    references:
      - https://example.com/a
      - javascript:alert(1)
    falsepositives: [Admin scripts]
    logsource: {category: process_creation, product: windows}
    detection:
      selection:
        Image|endswith: '\\\\powershell.exe'
        CommandLine|contains: ' -enc '
      condition: selection
    level: high
    """
)


def test_describe_reads_the_fields_and_the_detection_block() -> None:
    doc = describe(RULE, "11111111-0000-4000-8000-000000000001")
    assert doc.description == "Detects powershell -enc."
    assert doc.author == "Someone, Other"
    assert doc.references == ("https://example.com/a", "javascript:alert(1)")
    assert doc.falsepositives == ("Admin scripts",)
    assert "category: process_creation" in doc.logsource
    assert doc.detection.splitlines() == [
        "selection:",
        "  Image|endswith: \\\\powershell.exe",
        "  CommandLine|contains: ' -enc '",
        "condition: selection",
    ]


def test_a_file_of_several_rules_picks_the_rule_by_id_or_position() -> None:
    second = RULE.replace("000000000001", "000000000002").replace("Detects", "Also detects")
    text = RULE + "---\n" + second
    assert describe(text, "11111111-0000-4000-8000-000000000002").description.startswith("Also")
    assert describe(text, "no-such-id", nth_of_path("x.yml#2")).description.startswith("Also")
    assert describe(text, "no-such-id", nth_of_path("x.yml")).description.startswith("Detects")


def test_bad_or_odd_yaml_gives_an_empty_description() -> None:
    assert describe("title: [unclosed", "x").description == ""
    assert describe("- a list\n- not a rule\n", "x").detection == ""
    assert describe("title: t\nreferences: https://one.example\n", "x").references == (
        "https://one.example",
    )


def test_nth_of_path() -> None:
    assert nth_of_path("a/b.yml") == 0 and nth_of_path("a/b.yml#3") == 2
    assert nth_of_path("a#b.yml") == 0


def test_every_sigmahq_process_access_rule_has_its_logic(sigma_dir: Path) -> None:
    rules = sorted((sigma_dir / "rules" / "windows" / "process_access").glob("*.yml"))
    assert rules
    for path in rules:
        doc = describe(path.read_text(encoding="utf-8"), "", 0)
        assert "condition:" in doc.detection and doc.description, path


def test_the_logic_is_written_out_when_first_read() -> None:
    """Lists of rules read the description alone (`casescope detections`, the rules of a
    case); writing each rule's logic back out as YAML (PyYAML's emitter is pure Python)
    took a third of `casescope detections` (bench/cli.py), so it waits for a reader."""
    doc = describe(RULE.replace("Someone", "Someone else"), "11111111-0000-4000-8000-000000000001")
    assert doc.description == "Detects powershell -enc."
    assert "detection" not in vars(doc) and "logsource" not in vars(doc)
    assert doc.detection.endswith("condition: selection")
    assert "detection" in vars(doc)  # written once, then kept with the (cached) description
    assert doc.logsource.splitlines() == ["category: process_creation", "product: windows"]

"""Field names as Sigma writes them: `New Value` in the log is `NewValue` (or `New_Value`) in
a rule, while the event keeps the name it was written with.

The crafted Defender and Antimalware logs (`tests/crafted_evtx.py`) go through the real
EVTX parser and the whole SigmaHQ snapshot.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from casescope.detect.atoms import field_key, name_key
from casescope.detect.engine import CompiledRuleSet
from casescope.model.enums import FileType
from casescope.parse.files import iter_batches
from casescope.parse.report import ParseReport
from tests.crafted_evtx import DEFENDER_CHANNEL, EXCLUSION_KEY, write_all
from tests.unit.detect.support import compile_text, fired, make_batch, rule_text


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pa.Table]:
    folder = tmp_path_factory.mktemp("crafted")
    return {
        path.name: pa.Table.from_batches(list(iter_batches(path, FileType.EVTX, ParseReport())))
        for path in write_all(folder)
    }


def _titles(snapshot: CompiledRuleSet, table: pa.Table) -> dict[int, set[str]]:
    """Record id -> titles of the rules that fire on it."""
    titles = {rule.id: rule.title for rule in snapshot.rules}
    hits = snapshot.evaluate(table.combine_chunks().to_batches()[0])
    records = table.column("record_id").to_pylist()
    out: dict[int, set[str]] = {record: set() for record in records}
    for seq, rule_id in zip(hits["seq"].to_pylist(), hits["rule_id"].to_pylist(), strict=True):
        out[records[seq]].add(titles[rule_id])
    return out


def test_the_parser_keeps_the_names_as_written(crafted: dict[str, pa.Table]) -> None:
    fields = dict(crafted["defender-operational.evtx"].column("fields")[0].as_py())
    assert fields["New Value"].endswith(r"\Exclusions\Paths\C:\Users\Public = 0x0")
    assert "NewValue" not in fields


def test_defender_rules_fire_on_names_with_spaces(
    snapshot: CompiledRuleSet, crafted: dict[str, pa.Table]
) -> None:
    titles = _titles(snapshot, crafted["defender-operational.evtx"])
    assert "Windows Defender Exclusions Added" in titles[1]  # NewValue|contains
    assert "Windows Defender AMSI Trigger Detected" in titles[2]  # SourceName: AMSI
    lsass = "LSASS Access Detected via Attack Surface Reduction"
    assert lsass in titles[3]  # an unknown process
    assert lsass not in titles[4]  # svchost.exe: the rule's `ProcessName` filter holds
    failure = "Windows Defender Real-Time Protection Failure/Restart"
    assert failure not in titles[5]  # `Feature_Name` filter: Network Inspection, no updates
    assert failure in titles[6]


def test_antimalware_detection_fields_are_found(crafted: dict[str, pa.Table]) -> None:
    rule = rule_text(
        "  selection:\n    ThreatName|contains: Mimikatz\n    SeverityID: 5\n"
        "    Detection_User|endswith: '\\alice'\n  condition: selection",
        logsource="service: system",
    )
    table = crafted["antimalware-system.evtx"]
    assert fired(compile_text(rule), table.combine_chunks().to_batches()[0]) == [0]


@pytest.mark.parametrize(
    "field",
    ["NewValue", "New_Value", "New Value", "newvalue", "Event.EventData.New Value"],
)
def test_every_spelling_reads_the_same_field(field: str) -> None:
    rule = rule_text(
        f"  selection:\n    '{field}|contains': Exclusions\n  condition: selection",
        logsource="service: windefend",
    )
    batch = make_batch(
        [
            {"EventID": 5007, "Channel": DEFENDER_CHANNEL, "New Value": EXCLUSION_KEY},
            {"EventID": 5007, "Channel": DEFENDER_CHANNEL, "Old Value": EXCLUSION_KEY},
        ]
    )
    assert fired(compile_text(rule), batch) == [0]


def test_keys_of_rule_and_event_names() -> None:
    assert name_key("Threat Name") == name_key("ThreatName") == name_key("Threat_Name")
    assert field_key("Event.EventData.Threat Name") == name_key("Threat Name")
    assert field_key("Event.UserData.LogFileCleared.SubjectUserName") == "subjectusername"
    assert field_key("Event.System.EventID") == field_key("EventID") == "@event_id"
    assert field_key("Provider_Name") == field_key("ProviderName") == "@provider"
    assert field_key("Event.System.Provider_attributes.Name") == "@provider"

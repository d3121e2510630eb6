"""Per-case exclusions: which hits a rule switch, field conditions or a Sigma filter hide."""

from __future__ import annotations

import pyarrow as pa
import pytest

from casescope.detect.exclusions import ANY, Exclusion, ExclusionError, ExclusionSet
from tests.unit.detect.support import make_batch

BUILD_BOXES = """title: not on build boxes
logsource: {product: windows}
filter:
  rules: any
  build_box:
    Computer|startswith: 'BUILD'
  condition: not build_box
"""
EVENTS = make_batch(
    [
        {"EventID": 1, "SubjectUserName": "SVC_BACKUP", "Computer": "WS1"},
        {"EventID": 1, "SubjectUserName": "alice", "Computer": "BUILD01"},
        {"EventID": 1, "SubjectUserName": "bob", "Computer": "WS2"},
    ]
)


def _hits(*pairs: tuple[int, str]) -> pa.Table:
    seqs, rules = zip(*pairs, strict=True)
    return pa.table({"seq": pa.array(seqs, pa.uint64()), "rule_id": list(rules)})


def test_switches_conditions_and_filters() -> None:
    exclusions = ExclusionSet.build(
        [
            Exclusion(1, ("r1",), None, {"Subject_User_Name": ("svc_backup",)}),
            Exclusion(2, ("r2",), "hayabusa"),  # a rule switch, in one rule set only
            Exclusion(3, (ANY,), None, {}, BUILD_BOXES),
        ]
    )
    hits = _hits((0, "s:r1"), (1, "s:r1"), (2, "s:r1"), (0, "hayabusa:r2"), (2, "sigmahq:r2"))
    assert exclusions.excluded(EVENTS, hits) == [1, 3, None, 2, None]
    assert exclusions.needs_events(["sigmahq:r2"])  # the filter applies to any rule
    assert not ExclusionSet.build([Exclusion(2, ("r2",))]).needs_events(["s:r2"])


def test_values_of_one_field_are_alternatives_and_wildcards_work() -> None:
    exclusions = ExclusionSet.build(
        [Exclusion(7, ("r1",), None, {"Computer": ("ws1", "WS*2"), "EventID": ("1",)})]
    )
    hits = _hits((0, "a:r1"), (1, "a:r1"), (2, "a:r1"))
    assert exclusions.excluded(EVENTS, hits) == [7, None, 7]


@pytest.mark.parametrize(
    "document", ["not: a filter", "title: x\nlogsource: {product: windows}\nfilter: {}\n"]
)
def test_bad_filters_are_refused(document: str) -> None:
    with pytest.raises(ExclusionError):
        ExclusionSet.build([Exclusion(1, (ANY,), None, {}, document)])

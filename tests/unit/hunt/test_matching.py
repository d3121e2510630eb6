"""The batch matcher: each type's rule (cases.py), where hits are reported, batch shapes."""

from __future__ import annotations

import pyarrow as pa
import pytest

from casescope.hunt.ioc import IocError
from casescope.hunt.matcher import HIT_SCHEMA, compile_iocs
from tests.unit.hunt.cases import CASES, MatchCase
from tests.unit.hunt.events import ioc, make_batch


@pytest.mark.parametrize("case", CASES, ids=[c.why for c in CASES])
def test_type_rules(case: MatchCase) -> None:
    matcher = compile_iocs([ioc(case.ioc, case.ioc_type)])
    hits = matcher.match(make_batch([{"fields": {"Value": case.text}}]))
    assert (hits.num_rows > 0) is case.expected, case.why


def test_hits_name_the_field_and_event() -> None:
    batch = make_batch(
        [
            {"computer": "WS1", "fields": {"TargetUserName": "jdoe"}, "user_name": "jdoe"},
            {"fields": {"DestinationIp": "10.1.1.1", "SourceIp": "10.1.1.10"}},
            {"fields": {"A": "x 10.1.1.1", "B": "10.1.1.1"}},
        ],
        first_seq=100,
    )
    matcher = compile_iocs([ioc("jdoe", "username", 7), ioc("10.1.1.1", ioc_id=9)])
    hits = matcher.match(batch)
    assert hits.schema.equals(HIT_SCHEMA)
    assert hits.to_pylist() == [
        {"seq": 100, "ioc_id": 7, "field": "TargetUserName"},
        {"seq": 100, "ioc_id": 7, "field": "user_name"},
        {"seq": 101, "ioc_id": 9, "field": "DestinationIp"},
        {"seq": 102, "ioc_id": 9, "field": "A"},
        {"seq": 102, "ioc_id": 9, "field": "B"},
    ]


def test_every_core_text_column_is_searched() -> None:
    row = {
        "channel": "evil-chan",
        "provider": "evil-prov",
        "computer": "evil-host",
        "user_name": "evil-user",
        "user_sid": "evil-sid",
        "raw": '{"not": "evil-raw"}',
    }
    hits = compile_iocs([ioc("evil", "string")]).match(make_batch([row]))
    assert hits.column("field").to_pylist() == [
        "channel",
        "computer",
        "provider",
        "user_name",
        "user_sid",
    ]


def test_sliced_batches_and_null_values() -> None:
    rows = [{"fields": {"K": f"host{i}.evil.com", "N": None}} for i in range(6)]
    batch = make_batch(rows).slice(2, 3)
    hits = compile_iocs([ioc("evil.com")]).match(batch)
    assert hits.column("seq").to_pylist() == [2, 3, 4]
    assert set(hits.column("field").to_pylist()) == {"K"}


def test_empty_values_never_match_even_an_empty_regex() -> None:
    batch = make_batch([{"fields": {"Empty": "", "Full": "x"}}])
    hits = compile_iocs([ioc("^$", "regex"), ioc("^x?$", "regex", 2)]).match(batch)
    assert hits.to_pylist() == [{"seq": 0, "ioc_id": 2, "field": "Full"}]


def test_many_iocs_on_one_value_and_overlapping_literals() -> None:
    value = "https://sub.evil.com/evil.exe?u=jdoe@evil.com"
    iocs = [
        ioc("evil.com", ioc_id=1),
        ioc("sub.evil.com", ioc_id=2),
        ioc("evil.exe", ioc_id=3),
        ioc("jdoe@evil.com", ioc_id=4),
        ioc("https://sub.evil.com/", ioc_id=5),
        ioc("evil", "string", ioc_id=6),
        ioc("other.com", ioc_id=7),
    ]
    hits = compile_iocs(iocs).match(make_batch([{"fields": {"Url": value}}]))
    assert hits.column("ioc_id").to_pylist() == [1, 2, 3, 4, 5, 6]


def test_non_ascii_values_are_lower_cased_before_matching() -> None:
    batch = make_batch([{"fields": {"Path": "C:\\Users\\ÉLODIE\\Bad.exe"}}])
    hits = compile_iocs([ioc("c:\\users\\élodie\\", "filepath")]).match(batch)
    assert hits.num_rows == 1


def test_empty_batch_and_no_iocs() -> None:
    empty = make_batch([])
    assert compile_iocs([ioc("evil.com")]).match(empty).num_rows == 0
    assert compile_iocs([]).match(make_batch([{"fields": {"a": "b"}}])).num_rows == 0


def test_compiling_needs_unique_ids() -> None:
    with pytest.raises(IocError, match="no id"):
        compile_iocs([ioc("evil.com").__class__(**{**ioc("evil.com").__dict__, "id": None})])
    with pytest.raises(IocError, match="unique"):
        compile_iocs([ioc("evil.com", ioc_id=1), ioc("bad.com", ioc_id=1)])


def test_many_regex_iocs_are_scanned_in_chunks() -> None:
    iocs = [ioc(f"^tool{i}-[0-9]+$", "regex", i) for i in range(40)]
    batch = make_batch([{"fields": {"F": f"TOOL{i}-{i}"}} for i in range(40)])
    hits = compile_iocs(iocs).match(batch)
    assert hits.column("ioc_id").to_pylist() == list(range(40))
    assert hits.column("seq").to_pylist() == list(range(40))


def test_result_is_an_arrow_table_even_without_hits() -> None:
    hits = compile_iocs([ioc("evil.com")]).match(make_batch([{"fields": {"a": "b"}}]))
    assert isinstance(hits, pa.Table) and hits.schema.equals(HIT_SCHEMA)

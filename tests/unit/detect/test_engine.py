"""The compiled rule set as a whole: output contract, laws, save/load, subsets.

Laws checked on the attack samples with the whole snapshot active: hits do not depend on
how events are cut into batches, nor on which evaluation strategy the engine picks
(anchored or dense rows, vectorised programs or short-circuit trees, refined regexes).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casescope.detect import anchors, evaluate, values
from casescope.detect.engine import HITS_SCHEMA, CompiledRuleSet
from casescope.model.enums import FileType
from casescope.parse.files import iter_batches
from casescope.parse.report import ParseReport
from tests.unit.detect.support import SYSMON, make_batch


@pytest.fixture(scope="module")
def samples(attack_samples: Path) -> pa.Table:
    batches = [
        batch
        for path in sorted(attack_samples.rglob("*.evtx"))
        for batch in iter_batches(path, FileType.EVTX, ParseReport())
    ]
    table = pa.Table.from_batches(batches).combine_chunks()
    seq = pa.array(range(table.num_rows), pa.uint64())  # one ordinal over all files
    return table.set_column(0, "seq", seq)


@pytest.fixture(scope="module")
def expected(snapshot: CompiledRuleSet, samples: pa.Table) -> set[tuple[int, str]]:
    return _hits(snapshot, samples.to_batches())


def _hits(ruleset: CompiledRuleSet, batches: list[pa.RecordBatch]) -> set[tuple[int, str]]:
    found: set[tuple[int, str]] = set()
    for batch in batches:
        table = ruleset.evaluate(batch)
        assert table.schema == HITS_SCHEMA
        seqs, ids = table.column("seq").to_pylist(), table.column("rule_id").to_pylist()
        found.update(zip(seqs, ids, strict=True))
    return found


def test_output_is_ordered_by_seq_then_rule(snapshot: CompiledRuleSet, samples: pa.Table) -> None:
    table = snapshot.evaluate(samples.to_batches()[0])
    seqs, ids = table.column("seq").to_pylist(), table.column("rule_id").to_pylist()
    rows = list(zip(seqs, ids, strict=True))
    index = {rule.id: i for i, rule in enumerate(snapshot.rules)}
    assert rows == sorted(rows, key=lambda r: (r[0], index[r[1]]))
    assert len(rows) > 1000


def test_empty_batch_gives_an_empty_table(snapshot: CompiledRuleSet) -> None:
    assert snapshot.evaluate(make_batch([])).equals(HITS_SCHEMA.empty_table())


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(cuts=st.lists(st.integers(min_value=1, max_value=8254), max_size=6, unique=True))
def test_hits_do_not_depend_on_batch_boundaries(
    snapshot: CompiledRuleSet, samples: pa.Table, expected: set, cuts: list[int]
) -> None:
    bounds = [0, *sorted(cuts), samples.num_rows]
    batches = [samples.slice(a, b - a).to_batches()[0] for a, b in itertools.pairwise(bounds)]
    assert _hits(snapshot, [b for b in batches if b.num_rows]) == expected


@pytest.mark.parametrize(
    ("module", "name", "value"),
    [
        (anchors, "DENSE_SHARE", -1.0),  # every rule on every row
        (anchors, "FILTER_CLAUSES", 0),  # anchors not filtered by further clauses
        (evaluate, "TREE_WORK", 0),  # every rule through the short-circuit tree
        (evaluate, "REFINE_ROWS", 10**9),  # regexes never computed ahead
        (values, "SMALL_VALUES", -1),  # RE2 and Polars kernels even for a few values
        (evaluate, "TEXT_SLOTS", 10**9),  # values as Python lists on this large batch
    ],
)
def test_strategies_agree(
    snapshot: CompiledRuleSet,
    samples: pa.Table,
    expected: set,
    monkeypatch: pytest.MonkeyPatch,
    module: object,
    name: str,
    value: float,
) -> None:
    monkeypatch.setattr(module, name, value)
    assert _hits(snapshot, samples.to_batches()) == expected


def test_small_batches_give_the_same_hits(
    snapshot: CompiledRuleSet, samples: pa.Table, expected: set
) -> None:
    """~30 events a batch, like one small EVTX file: the small-value kernels run."""
    assert _hits(snapshot, samples.to_batches(max_chunksize=30)) == expected


def test_save_and_load_give_the_same_hits(
    snapshot: CompiledRuleSet, samples: pa.Table, expected: set, tmp_path: Path
) -> None:
    snapshot.save(tmp_path / "set.pkl")
    loaded = CompiledRuleSet.load(tmp_path / "set.pkl")
    assert [r.content_hash for r in loaded.rules] == [r.content_hash for r in snapshot.rules]
    assert _hits(loaded, samples.to_batches()) == expected


def test_subset_evaluates_only_its_rules(
    snapshot: CompiledRuleSet, samples: pa.Table, expected: set
) -> None:
    chosen = {rule_id for _, rule_id in sorted(expected)[::7]}
    subset = snapshot.subset(chosen)
    assert {r.id for r in subset.rules} == chosen
    assert _hits(subset, samples.to_batches()) == {h for h in expected if h[1] in chosen}


def test_null_values_and_absent_event_ids_are_tolerated(snapshot: CompiledRuleSet) -> None:
    batch = make_batch(
        [
            {"Channel": SYSMON, "Image": r"C:\x\mimikatz.exe"},  # no EventID
            {"EventID": 1, "Channel": SYSMON, "Image": None, "CommandLine": "whoami /all"},
        ]
    )
    fields = batch.column("fields")
    items = pa.array(["C:\\x\\mimikatz.exe", None], pa.string())
    nulls = pa.MapArray.from_arrays(fields.offsets, fields.keys, items)
    batch = batch.set_column(batch.schema.get_field_index("fields"), "fields", nulls)
    hits = snapshot.evaluate(batch)
    assert hits.schema == HITS_SCHEMA

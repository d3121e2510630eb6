"""The rule sets analysts bring: Hayabusa's repository imported and run, and two sets active
at once without a hit counted twice.

The compile report (rules compiled, warned, off by the set's defaults, refused by reason)
is printed: run with `-s` to read it.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.enums import FileType
from casescope.parse.files import iter_batches
from casescope.parse.report import ParseReport
from casescope.store.rulesets import compiled_id, import_rules, list_rules, load_active
from tests.unit.detect.support import make_batch

pytestmark = pytest.mark.slow
MIMIKATZ_USE = "06d71506-7beb-4f22-8888-e2e5e2ca7fd8"  # in SigmaHQ and in Hayabusa's set


@pytest.fixture(scope="module")
def samples(attack_samples: Path) -> pa.Table:
    batches = [
        batch
        for path in sorted(attack_samples.rglob("*.evtx"))
        for batch in iter_batches(path, FileType.EVTX, ParseReport())
    ]
    table = pa.Table.from_batches(batches).combine_chunks()
    return table.set_column(0, "seq", pa.array(range(table.num_rows), pa.uint64()))


def _report(db: Database) -> Counter[str]:
    rows = list_rules(db)
    reasons: Counter[str] = Counter()
    for row in rows:
        if row.error:
            reasons["refused: " + re.sub(r"%[^%]+%", "%…%", row.error)[:80]] += 1
        elif not row.enabled:
            reasons["compiled, off by the set's defaults"] += 1
        else:
            reasons["compiled and active"] += 1
        if row.warnings and not row.error:
            for warning in row.warnings.splitlines():
                reasons["  warning: " + re.split(r"[:']", warning)[0].strip()] += 1
    print(f"\nhayabusa-rules: {len(rows):,} rows")
    for reason, count in sorted(reasons.items()):
        print(f"  {count:6,}  {reason}")
    return reasons


def test_hayabusa_rules_import_and_run(
    db: Database, settings: Settings, data_dir: Path, samples: pa.Table
) -> None:
    root = data_dir / "hayabusa-rules"
    report = import_rules(db, settings, root, "hayabusa")
    reasons = _report(db)
    refused = {r.path: r.error for r in list_rules(db, failed=True)}
    assert all("/placeholder/" in path for path in refused), refused  # they wait for values
    assert all(e.startswith("needs placeholder values") for e in refused.values())
    assert report.rules > 4_900 and report.warned > 2_400 and report.off > 50
    assert reasons["compiled and active"] > 4_600
    counted = [r for r in list_rules(db) if r.title.endswith("(counted events)")]
    assert len(counted) >= 24 and not any(r.error for r in counted)  # `| count()` converted
    active = load_active(settings, None)  # they are deprecated or unsupported: off
    assert active is not None and len(active.ruleset.correlations) == 3  # Hayabusa's own
    hits = active.ruleset.evaluate(samples.to_batches()[0])
    fired = Counter(hits.column("rule_id").to_pylist())
    print(f"  {hits.num_rows:,} hits of {len(fired):,} rules on the attack samples")
    assert len(fired) > 300
    details = [r for r in active.ruleset.rules if r.details and r.id in fired]
    assert details and all(r.source == "hayabusa" for r in details)


def test_two_rule_sets_each_keep_their_hits(
    db: Database, settings: Settings, data_dir: Path
) -> None:
    import_rules(db, settings, data_dir / "sigma" / "rules" / "windows" / "builtin", "sigmahq")
    import_rules(db, settings, data_dir / "hayabusa-rules" / "sigma" / "builtin", "hayabusa")
    rows = {(r.source, r.rule_uid): r for r in list_rules(db) if r.rule_uid == MIMIKATZ_USE}
    assert set(rows) == {("sigmahq", MIMIKATZ_USE), ("hayabusa", MIMIKATZ_USE)}
    active = load_active(settings, None)
    assert active is not None
    batch = make_batch([{"EventID": 4688, "CommandLine": "m.exe sekurlsa::logonpasswords"}])
    by_rule = Counter(active.ruleset.evaluate(batch).column("rule_id").to_pylist())
    ours = {source: compiled_id(row) for (source, _), row in rows.items()}
    assert by_rule[ours["sigmahq"]] == by_rule[ours["hayabusa"]] == 1  # one hit in each set
    assert {active.row_ids[ours[s]] for s in ours} == {row.id for row in rows.values()}

"""Benchmark: the Sigma engine alone (no DB, no index).

Prints rule-load and compile time for the snapshot's Windows rules, events/s of evaluate()
over the attack samples (one batch per file, as ingest does, and 10,000-event batches),
detections per level, and the rules whose hit counts differ most from Zircolite's on the
same files (../shared/data/reference; a peer's output, not ground truth).
Usage: .venv/bin/python bench/sigma_engine.py
(Not named sigma.py: the script folder is on the import path and would shadow pySigma.)
"""

from __future__ import annotations

import collections
import csv
import sys
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from casescope.detect.engine import CompiledRuleSet, compile_rules
from casescope.detect.load import load_rules
from casescope.model.enums import FileType
from casescope.parse import ParseReport, iter_batches
from common import ATTACK_SAMPLES, DATA

REFERENCE = DATA / "reference" / "zircolite-3.7.0_attack-samples_per-rule.csv"


def timed_rate(
    ruleset: CompiledRuleSet, batches: list[pa.RecordBatch]
) -> tuple[float, collections.Counter]:
    hits: collections.Counter = collections.Counter()
    started = time.perf_counter()
    for batch in batches:
        hits.update(ruleset.evaluate(batch).column("rule_id").to_pylist())
    events = sum(b.num_rows for b in batches)
    return events / (time.perf_counter() - started), hits


def compare_with_zircolite(ruleset: CompiledRuleSet, hits: collections.Counter) -> None:
    if not REFERENCE.exists():
        return
    with REFERENCE.open() as handle:
        reference = {row["rule_id"]: row for row in csv.DictReader(handle)}
    titles = {rule.id: rule.title for rule in ruleset.rules}
    rows = []
    for rule_id, row in reference.items():
        theirs = max(int(row["hits_sysmon_ruleset"] or 0), int(row["hits_generic_ruleset"] or 0))
        ours = hits.get(rule_id, 0)
        if ours != theirs:
            rows.append((abs(ours - theirs), ours, theirs, titles.get(rule_id, row["title"])))
    agree = len(reference) - len(rows)
    print(
        f"Zircolite comparison: {agree}/{len(reference)} rules with the same count; "
        f"largest differences (ours, Zircolite):"
    )
    for _, ours, theirs, title in sorted(rows, reverse=True)[:10]:
        print(f"  {ours:5d} {theirs:5d}  {title}")


def main() -> None:
    started = time.perf_counter()
    load = load_rules(DATA / "sigma" / "rules" / "windows")
    loaded = time.perf_counter()
    ruleset = compile_rules(load)
    compiled = time.perf_counter()
    print(
        f"rules: {len(ruleset.rules)} compiled, {len(ruleset.failures)} not; "
        f"load {loaded - started:.1f} s, compile {compiled - loaded:.1f} s"
    )
    per_file = [
        b
        for p in sorted(ATTACK_SAMPLES.rglob("*.evtx"))
        for b in iter_batches(p, FileType.EVTX, ParseReport())
    ]
    rate, hits = timed_rate(ruleset, per_file)
    events = sum(b.num_rows for b in per_file)
    print(
        f"evaluate, one batch per file: {events:,} events, {rate:,.0f} events/s, "
        f"{sum(hits.values()):,} detections"
    )
    big = pa.Table.from_batches(per_file).combine_chunks().to_batches(max_chunksize=10_000)
    rate, _ = timed_rate(ruleset, big)
    print(f"evaluate, 10,000-event batches: {rate:,.0f} events/s")
    levels = {rule.id: rule.level for rule in ruleset.rules}
    by_level = collections.Counter()
    for rule_id, count in hits.items():
        by_level[levels[rule_id]] += count
    print("detections per level:", dict(sorted(by_level.items())))
    compare_with_zircolite(ruleset, hits)


if __name__ == "__main__":
    main()

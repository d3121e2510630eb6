"""Benchmark: the Sigma engine alone (no DB, no index).

Prints rule-load and compile time (cold) and cached-load time for the snapshot's rules,
events/s of evaluate() over the attack samples (one batch per file, as ingest does; all
events in 10,000-event batches; and the samples repeated to 100k+ events), the whole
attack-sample parse + Sigma time, detections per level, and the rules whose hit counts
differ from Zircolite's on the same files (../shared/data/reference; a peer's output, not
ground truth).
Usage: .venv/bin/python bench/sigma_engine.py [--all]   (--all: the whole snapshot,
default: rules/windows as Zircolite used)
(Not named sigma.py: the script folder is on the import path and would shadow pySigma.)
"""

from __future__ import annotations

import collections
import csv
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from casescope.detect import CompiledRuleSet, compile_rules, load_rules
from casescope.detect.cache import load_or_compile
from casescope.model.enums import FileType
from casescope.parse import ParseReport, iter_batches
from common import ATTACK_SAMPLES, DATA

REFERENCE = DATA / "reference" / "zircolite-3.7.0_attack-samples_per-rule.csv"
SNAPSHOT = ("rules", "rules-emerging-threats", "rules-threat-hunting", "rules-dfir")


def rule_sources(everything: bool) -> list[Path]:
    sigma = DATA / "sigma"
    if not everything:
        return [sigma / "rules" / "windows"]
    return [sigma / name for name in (*SNAPSHOT, "rules-compliance") if (sigma / name).is_dir()]


def timed_rate(
    ruleset: CompiledRuleSet, batches: list[pa.RecordBatch]
) -> tuple[float, collections.Counter]:
    hits: collections.Counter = collections.Counter()
    started = time.perf_counter()
    for batch in batches:
        hits.update(ruleset.evaluate(batch).column("rule_id").to_pylist())
    events = sum(b.num_rows for b in batches)
    return events / (time.perf_counter() - started), hits


def compile_and_cache(sources: list[Path]) -> CompiledRuleSet:
    started = time.perf_counter()
    load = load_rules(sources)
    loaded = time.perf_counter()
    ruleset = compile_rules(load)
    compiled = time.perf_counter()
    print(
        f"rules: {len(ruleset.rules)} compiled, {len(ruleset.failures)} not; "
        f"load {loaded - started:.1f} s, compile {compiled - loaded:.1f} s (cold)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        load_or_compile(sources, Path(tmp))
        started = time.perf_counter()
        cached = load_or_compile(sources, Path(tmp))
        total = time.perf_counter() - started
        path = next(Path(tmp).glob("*.pkl"))
        started = time.perf_counter()
        CompiledRuleSet.load(path)
        unpickle = time.perf_counter() - started
        size = path.stat().st_size / 1e6
    print(
        f"cached load: {total:.2f} s (hash the rule files + unpickle {unpickle:.2f} s, "
        f"{size:.0f} MB)"
    )
    return cached


def ingest(ruleset: CompiledRuleSet, files: list[Path]) -> list[pa.RecordBatch]:
    started = time.perf_counter()
    batches = []
    for path in files:
        for batch in iter_batches(path, FileType.EVTX, ParseReport()):
            ruleset.evaluate(batch)
            batches.append(batch)
    elapsed = time.perf_counter() - started
    events = sum(b.num_rows for b in batches)
    print(f"attack samples, parse + Sigma: {len(files)} files, {events:,} events, {elapsed:.1f} s")
    return batches


def compare_with_zircolite(ruleset: CompiledRuleSet, hits: collections.Counter) -> None:
    if not REFERENCE.exists():
        return
    with REFERENCE.open() as handle:
        reference = {row["rule_id"]: row for row in csv.DictReader(handle)}
    titles = {rule.id: rule.title for rule in ruleset.rules}
    rows = []
    for rule_id, row in reference.items():
        theirs = {int(row["hits_sysmon_ruleset"] or 0), int(row["hits_generic_ruleset"] or 0)}
        ours = hits.get(rule_id, 0)
        if ours not in theirs:
            gap = min(abs(ours - t) for t in theirs)
            rows.append((gap, ours, sorted(theirs), titles.get(rule_id, row["title"])))
    ours_only = [titles[r] for r in hits if r in titles and r not in reference]
    print(
        f"Zircolite comparison: {len(reference) - len(rows)}/{len(reference)} rules with the "
        f"same count as its sysmon or generic ruleset; {len(ours_only)} rules fire only here"
    )
    print("  differences (ours, Zircolite sysmon/generic):")
    for _, ours, theirs, title in sorted(rows, reverse=True)[:25]:
        print(f"  {ours:5d} {'/'.join(map(str, theirs)):>9}  {title}")
    for title in sorted(ours_only)[:15]:
        print(f"  only here: {title}")


def main() -> None:
    ruleset = compile_and_cache(rule_sources("--all" in sys.argv))
    files = sorted(ATTACK_SAMPLES.rglob("*.evtx"))
    ruleset.warm()
    per_file = ingest(ruleset, files)
    rate, hits = timed_rate(ruleset, per_file)
    events = sum(b.num_rows for b in per_file)
    print(
        f"evaluate, one batch per file: {events:,} events, {rate:,.0f} events/s, "
        f"{sum(hits.values()):,} detections"
    )
    table = pa.Table.from_batches(per_file).combine_chunks()
    rate, _ = timed_rate(ruleset, table.to_batches(max_chunksize=10_000))
    print(f"evaluate, 10,000-event batches: {rate:,.0f} events/s")
    repeated = pa.concat_tables([table] * 13).combine_chunks()
    rate, _ = timed_rate(ruleset, repeated.to_batches(max_chunksize=50_000))
    print(f"evaluate, samples x13 ({repeated.num_rows:,} events), 50k batches: {rate:,.0f}/s")
    levels = {rule.id: rule.level for rule in ruleset.rules}
    by_level: collections.Counter = collections.Counter()
    for rule_id, count in hits.items():
        by_level[levels[rule_id]] += count
    print("detections per level:", dict(sorted(by_level.items())))
    compare_with_zircolite(ruleset, hits)


if __name__ == "__main__":
    main()

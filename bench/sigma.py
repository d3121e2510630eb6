"""Benchmark: the Sigma engine alone (no DB, no index), on small and large batches.

Prints, for the rule set `casescope rules import DATA/sigma` builds (the whole snapshot;
`--windows`: only rules/windows, as Zircolite used):
- rule load + compile time (cold) and cached-load time (hash the files + unpickle);
- the Sigma step alone (`CompiledRuleSet.evaluate`) on the attack samples, as CPU seconds
  (this process, all threads) and events/s: one batch per file (as ingest does for small
  files), and 50,000-event batches (the samples concatenated);
- the same on a bulk-like set: every per-file batch evaluated 42 times (= the 11,634 small
  files of `bench/bulk.py`, which are the samples copied 42x), the per-file batches in groups
  of 64 as workers evaluate small files (jobs/group.py), and the samples concatenated 42x
  in 50,000-event batches;
- parse + Sigma of the attack samples, detections per level, and the rules whose hit counts
  differ from Zircolite's on the same files (DATA/reference; a peer, not ground truth);
- with `--import`: `casescope rules import DATA/sigma` into a fresh home (wall and CPU);
- with `--sets`, only this: events/s of the Sigma step on 50,000-event batches (the samples
  concatenated `--copies` times) with the SigmaHQ snapshot, with Hayabusa's rule repository
  (DATA/hayabusa-rules, the rules it runs by default, with its field aliases, as
  `casescope rules import` makes it), and with both sets active at once.
Timings are medians of `--repeat` runs (default 3); the machine is shared, so compare CPU
seconds run back to back rather than wall times.

Usage: .venv/bin/python bench/sigma.py [--windows] [--import] [--repeat 3] [--copies 42]
       .venv/bin/python bench/sigma.py --sets [--repeat 1] [--copies 12]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/ must not be on sys.path: bench/sigma.py would shadow pySigma's `sigma` namespace package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]

import argparse
import collections
import csv
import os
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable

import pyarrow as pa
from bench import common

from casescope.config import Settings
from casescope.detect.cache import load_or_compile
from casescope.detect.engine import CompiledRuleSet, compile_rules
from casescope.detect.load import RuleLoad, load_rules
from casescope.detect.ruleset_config import (
    aliases_for,
    read_defaults,
    read_eventkey_aliases,
    runs_as_written,
)
from casescope.model.enums import FileType
from casescope.parse.files import iter_batches
from casescope.parse.report import ParseReport

DATA: Path = common.DATA
ATTACK_SAMPLES: Path = common.ATTACK_SAMPLES
REFERENCE = DATA / "reference" / "zircolite-3.7.0_attack-samples_per-rule.csv"
HAYABUSA = DATA / "hayabusa-rules"
LARGE = 50_000  # events per batch when large files are evaluated (the analyzer's: 25,000)


def rule_source(windows: bool) -> Path:
    sigma = DATA / "sigma"
    return sigma / "rules" / "windows" if windows else sigma


def compile_and_cache(source: Path) -> CompiledRuleSet:
    cpu, started = time.process_time(), time.perf_counter()
    load = load_rules(source)
    loaded = time.perf_counter()
    ruleset = compile_rules(load)
    compiled = time.perf_counter()
    print(
        f"rules: {len(ruleset.rules):,} compiled, {len(ruleset.failures):,} not; cold: load "
        f"{loaded - started:.1f} s + compile {compiled - loaded:.1f} s "
        f"(CPU {time.process_time() - cpu:.1f} s)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        load_or_compile(source, Path(tmp))
        started = time.perf_counter()
        cached = load_or_compile(source, Path(tmp))
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


def timed(
    repeat: int, work: Callable[[], collections.Counter]
) -> tuple[float, float, collections.Counter]:
    """Median (CPU s, wall s) of `repeat` runs of `work`, and its result."""
    cpus, walls, result = [], [], collections.Counter()
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        result = work()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return statistics.median(cpus), statistics.median(walls), result


def evaluate_all(
    ruleset: CompiledRuleSet, batches: list[pa.RecordBatch], times: int = 1
) -> Callable[[], collections.Counter]:
    """A run of `evaluate` over the batches (`times` over): hits per rule id."""

    def work() -> collections.Counter:
        hits: collections.Counter = collections.Counter()
        for _ in range(times):
            for batch in batches:
                hits.update(ruleset.evaluate(batch).column("rule_id").to_pylist())
        return hits

    return work


def report(label: str, events: int, batches: int, cpu: float, wall: float) -> None:
    print(
        f"  {label}: {events:,} events in {batches:,} batches; CPU {cpu:.2f} s "
        f"({1000 * cpu / batches:.2f} ms/batch, {1000 * cpu / events * 1000:.1f} ms/1k events,"
        f" {events / cpu:,.0f} events/s), wall {wall:.2f} s"
    )


def file_batches(files: list[Path]) -> tuple[list[pa.RecordBatch], float]:
    """One batch per file (the parser's batches concatenated, as the analyzer buffers
    them), and the parse time."""
    started = time.perf_counter()
    batches = []
    for path in files:
        parts = list(iter_batches(path, FileType.EVTX, ParseReport()))
        if parts:
            batches.append(parts[0] if len(parts) == 1 else pa.concat_batches(parts))
    return batches, time.perf_counter() - started


#: Small files a worker evaluates together (the `CASESCOPE_GROUP_MAX_FILES` default).
GROUP_FILES = Settings.model_fields["group_max_files"].default


def group_batches(per_file: list[pa.RecordBatch], size: int) -> list[pa.RecordBatch]:
    """The per-file batches `size` at a time as one batch each, `seq` renumbered to the row
    (as jobs/group.py does: `seq` is unique only within a file)."""
    out = []
    for start in range(0, len(per_file), size):
        batch = pa.concat_batches(per_file[start : start + size])
        columns = list(batch.columns)
        columns[batch.schema.get_field_index("seq")] = pa.array(range(batch.num_rows), pa.uint64())
        out.append(pa.RecordBatch.from_arrays(columns, schema=batch.schema))
    return out


def sigma_step(
    ruleset: CompiledRuleSet, per_file: list[pa.RecordBatch], args: argparse.Namespace
) -> None:
    events = sum(b.num_rows for b in per_file)
    table = pa.Table.from_batches(per_file).combine_chunks()
    large = table.to_batches(max_chunksize=LARGE)
    print(f"Sigma step alone (evaluate), {len(ruleset.rules):,} rules, medians of {args.repeat}:")
    cpu, wall, _ = timed(args.repeat, evaluate_all(ruleset, per_file))
    report("attack samples, one batch per file", events, len(per_file), cpu, wall)
    cpu, wall, _ = timed(args.repeat, evaluate_all(ruleset, large))
    report(f"attack samples, {LARGE:,}-event batches", events, len(large), cpu, wall)
    copies = args.copies
    cpu, wall, _ = timed(1, evaluate_all(ruleset, per_file, copies))
    report(
        f"bulk-like: per-file batches x{copies} (one run)",
        events * copies,
        len(per_file) * copies,
        cpu,
        wall,
    )
    grouped = group_batches(per_file, GROUP_FILES)
    cpu, wall, _ = timed(1, evaluate_all(ruleset, grouped, copies))
    label = f"bulk-like: groups of {GROUP_FILES} files, as workers evaluate small files, x{copies}"
    report(f"{label} (one run)", events * copies, len(grouped) * copies, cpu, wall)
    repeated = pa.concat_tables([table] * copies).combine_chunks()
    big = repeated.to_batches(max_chunksize=LARGE)
    cpu, wall, _ = timed(1, evaluate_all(ruleset, big))
    label = f"bulk-like: samples x{copies} concatenated, {LARGE:,}-event batches (one run)"
    report(label, repeated.num_rows, len(big), cpu, wall)


def per_level(ruleset: CompiledRuleSet, hits: collections.Counter) -> None:
    levels = {rule.id: rule.level or "(none)" for rule in ruleset.rules}
    by_level: collections.Counter = collections.Counter()
    for rule_id, count in hits.items():
        by_level[levels[rule_id]] += count
    print(f"detections per level ({sum(hits.values()):,} in all):", dict(sorted(by_level.items())))


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


def set_load(name: str, root: Path) -> RuleLoad:
    """A rule set as `rules import` activates it: its rules under `name`, with the set's
    field aliases, without the rules it leaves off by default."""
    load = load_rules(root)
    aliases, defaults = read_eventkey_aliases(root), read_defaults(root)
    load.rules = [
        r for r in load.rules if defaults.enabled(r.sigma_id.lower(), str(r.rule.status or ""))
    ]
    for rule in load.rules:
        rule.source, rule.aliases = name, aliases_for(rule.rule, aliases)
        rule.as_written = runs_as_written(root)
    load.correlations = [
        c
        for c in load.correlations
        if defaults.enabled(
            str(c.definition.get("id", "")).lower(), str(c.definition.get("status", ""))
        )
    ]
    for corr in load.correlations:
        corr.source = name
    return load


def rule_sets(args: argparse.Namespace) -> None:
    """Events/s on 50,000-event batches with SigmaHQ, with Hayabusa's set, and with both."""
    files = sorted(ATTACK_SAMPLES.rglob("*.evtx"))
    per_file, _ = file_batches(files)
    table = pa.concat_tables([pa.Table.from_batches(per_file)] * args.copies).combine_chunks()
    batches = table.to_batches(max_chunksize=LARGE)
    sets = {"SigmaHQ": [("sigmahq", DATA / "sigma")], "Hayabusa": [("hayabusa", HAYABUSA)]}
    sets["both"] = sets["SigmaHQ"] + sets["Hayabusa"]
    print(f"{table.num_rows:,} events (samples x{args.copies}) in {len(batches)} batches")
    for label, sources in sets.items():
        load = RuleLoad()
        for name, root in sources:
            load.extend(set_load(name, root))
        ruleset = compile_rules(load).warm()
        cpu, wall, hits = timed(args.repeat, evaluate_all(ruleset, batches))
        print(
            f"  {label}: {len(ruleset.rules):,} rules; CPU {cpu:.2f} s, wall {wall:.2f} s; "
            f"{table.num_rows / cpu:,.0f} events/s (CPU), {table.num_rows / wall:,.0f} "
            f"events/s (wall); {sum(hits.values()):,} hits"
        )


def cli_import(source: Path) -> None:
    """`casescope rules import` into a fresh home: wall, and CPU of the child process."""
    exe = Path(sys.executable).with_name("casescope")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "CASESCOPE_HOME": home}
        started = time.perf_counter()
        subprocess.run([str(exe), "rules", "import", str(source)], env=env, check=True)
        wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"`casescope rules import {source}` (fresh home): wall {wall:.1f} s, CPU {cpu:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", action="store_true", help="only rules/windows")
    parser.add_argument("--import", dest="cli", action="store_true", help="time the CLI import")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--copies", type=int, default=42)
    parser.add_argument("--sets", action="store_true", help="SigmaHQ, Hayabusa, both: events/s")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    if args.sets:
        rule_sets(args)
        print(f"load average at end: {os.getloadavg()[0]:.1f}")
        return
    source = rule_source(args.windows)
    if args.cli:
        cli_import(source)
    ruleset = compile_and_cache(source).warm()
    files = sorted(ATTACK_SAMPLES.rglob("*.evtx"))
    per_file, parse = file_batches(files)
    _, wall, hits = timed(1, evaluate_all(ruleset, per_file))
    events = sum(b.num_rows for b in per_file)
    print(
        f"attack samples, parse + Sigma: {len(files)} files, {events:,} events, "
        f"{parse + wall:.1f} s (parse {parse:.1f} s, first Sigma pass {wall:.1f} s)"
    )
    sigma_step(ruleset, per_file, args)
    per_level(ruleset, hits)
    compare_with_zircolite(ruleset, hits)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

"""Compile a rule set once; evaluate it on event batches in native code.

Each rule is compiled under two pySigma pipelines — Windows log sources + Sysmon, and Windows
log sources + Security auditing (so `process_creation` fires on Sysmon EID 1 and on Security
4688 with `NewProcessName` as `Image`) — and the variants are OR-ed. Rules are indexed by the
EventIDs and Channels their conditions require: a batch meets only rules whose constraints
it can satisfy (plus the unconstrained ones), and all of them run in one Polars `select`.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from sigma.exceptions import SigmaError
from sigma.pipelines.sysmon import sysmon_pipeline
from sigma.pipelines.windows import windows_audit_pipeline, windows_logsource_pipeline
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule

from casescope.detect.compile import (
    AtomTable,
    CompileError,
    Node,
    compile_condition,
    constraints,
    required,
    tree_fields,
)
from casescope.detect.evaluate import Evaluator
from casescope.detect.frame import BatchColumns
from casescope.detect.load import LoadedRule, RuleFailure, RuleLoad

logger = logging.getLogger(__name__)

HITS_SCHEMA = pa.schema([("seq", pa.uint64()), ("rule_id", pa.string())])


def pipelines() -> dict[str, ProcessingPipeline]:
    return {
        "sysmon": windows_logsource_pipeline() + sysmon_pipeline(),
        "audit": windows_logsource_pipeline() + windows_audit_pipeline(),
    }


@dataclass
class CompiledRule:
    id: str
    title: str
    level: str
    status: str
    tags: list[str]
    path: str
    sha256: str
    tree: Node
    fields: set[str]
    clauses: tuple[frozenset[int], ...]  # necessary conditions, see compile.required
    event_ids: set[int] | None
    channels: set[str] | None


@dataclass
class CompiledRuleSet:
    rules: list[CompiledRule] = field(default_factory=list)
    failures: list[RuleFailure] = field(default_factory=list)
    atoms: AtomTable = field(default_factory=AtomTable)

    def candidates(self, batch: pa.RecordBatch) -> list[CompiledRule]:
        event_ids = set(batch.column("event_id").drop_null().unique().to_pylist())
        channels = {c.lower() for c in batch.column("channel").unique().to_pylist()}
        return [
            rule
            for rule in self.rules
            if (rule.event_ids is None or rule.event_ids & event_ids)
            and (rule.channels is None or rule.channels & channels)
        ]

    def evaluate(self, batch: pa.RecordBatch) -> pa.Table:
        """One row per (event, rule) hit: `seq`, `rule_id`."""
        rules = self.candidates(batch) if batch.num_rows else []
        if not rules:
            return HITS_SCHEMA.empty_table()
        columns = BatchColumns(batch, set().union(*(r.fields for r in rules)))
        evaluator = Evaluator(self.atoms, columns)
        seq = batch.column("seq").to_numpy()
        hit_seqs, hit_ids = [], []
        for rule in rules:
            if any(evaluator.surely_false(clause) for clause in rule.clauses):
                continue
            rows = np.flatnonzero(evaluator.tree(rule.tree))
            if rows.size:
                hit_seqs.append(seq[rows])
                hit_ids.extend([rule.id] * rows.size)
        if not hit_ids:
            return HITS_SCHEMA.empty_table()
        return pa.table(
            {
                "seq": pa.array(np.concatenate(hit_seqs), pa.uint64()),
                "rule_id": pa.array(hit_ids, pa.string()),
            },
            schema=HITS_SCHEMA,
        )


def _variant(rule: SigmaRule, pipeline: ProcessingPipeline):  # type: ignore[no-untyped-def]
    processed = copy.deepcopy(rule)
    pipeline.apply(processed)
    return processed.detection.parsed_condition


def compile_rule(
    loaded: LoadedRule, variants: dict[str, ProcessingPipeline], atoms: AtomTable
) -> CompiledRule:
    rule = loaded.rule
    trees: list[Node] = []
    event_ids: set[int] = set()
    channels: set[str] = set()
    seen: set[str] = set()
    unconstrained_ids = unconstrained_channels = False
    errors = []
    for pipeline in variants.values():
        try:
            conditions = _variant(rule, pipeline)
        except SigmaError as exc:  # this log source does not apply under that pipeline
            errors.append(str(exc))
            continue
        for condition in conditions:
            tree = condition.parsed
            key = repr(tree)
            if key in seen:
                continue
            seen.add(key)
            trees.append(compile_condition(tree, atoms))
            ids, chans = constraints(tree)
            unconstrained_ids |= ids is None
            unconstrained_channels |= chans is None
            event_ids |= ids or set()
            channels |= chans or set()
    if not trees:
        raise CompileError("; ".join(errors) or "no condition")
    combined = trees[0] if len(trees) == 1 else ("or", tuple(trees))
    return CompiledRule(
        id=str(rule.id or loaded.path),
        title=rule.title,
        level=str(rule.level or ""),
        status=str(rule.status or ""),
        tags=[str(t) for t in rule.tags],
        path=loaded.path,
        sha256=loaded.sha256,
        tree=combined,
        fields=tree_fields(combined, atoms, set()),
        clauses=tuple(sorted(set(required(combined)), key=len)),
        event_ids=None if unconstrained_ids else event_ids,
        channels=None if unconstrained_channels else channels,
    )


def is_windows(rule: SigmaRule) -> bool:
    return (rule.logsource.product or "").lower() == "windows"


def compile_rules(load: RuleLoad) -> CompiledRuleSet:
    """Compile every Windows rule; others and failures are kept with the reason."""
    variants = pipelines()
    compiled = CompiledRuleSet(failures=list(load.failures))
    for loaded in load.rules:
        if not is_windows(loaded.rule):
            compiled.failures.append(RuleFailure(loaded.path, "not a Windows rule (skipped)"))
            continue
        try:
            compiled.rules.append(compile_rule(loaded, variants, compiled.atoms))
        except (CompileError, SigmaError, ValueError, TypeError) as exc:
            compiled.failures.append(RuleFailure(loaded.path, f"{type(exc).__name__}: {exc}"))
    logger.info("compiled %d rules, %d not compiled", len(compiled.rules), len(compiled.failures))
    return compiled

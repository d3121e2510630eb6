"""A compiled rule set: compile once, evaluate on event batches, save and load.

`compile_rules(load)` processes every Windows rule under the pySigma pipeline variants
(`pipelines.py`), compiles their conditions to trees over shared atoms (`compile.py`) and
indexes them (`plan.py`). `CompiledRuleSet.evaluate(batch)` returns one row per
(event, rule) hit; `save`/`load` keep the whole compiled form (automata included) in one
pickle, so a worker loads ~2,400 rules in a fraction of a second.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
from sigma.exceptions import SigmaError

from casescope.collector import paused_gc
from casescope.detect.atoms import AtomTable, CompileError
from casescope.detect.correlations import CompiledCorrelation, compile_correlations
from casescope.detect.evaluate import BatchEvaluator
from casescope.detect.load import RuleFailure, RuleLoad
from casescope.detect.pipelines import pipeline_versions, variant_pipelines
from casescope.detect.placeholders import (
    MissingPlaceholders,
    Placeholders,
    placeholder_pipeline,
)
from casescope.detect.plan import RulePlan
from casescope.detect.rules import ENGINE_VERSION, CompiledRule, compile_rule

logger = logging.getLogger(__name__)

HITS_SCHEMA = pa.schema([pa.field("seq", pa.uint64()), pa.field("rule_id", pa.string())])
SUPPORTED_PRODUCTS = ("windows",)


@dataclass
class CompiledRuleSet:
    rules: list[CompiledRule] = field(default_factory=list)
    failures: list[RuleFailure] = field(default_factory=list)
    atoms: AtomTable = field(default_factory=AtomTable)
    correlations: list[CompiledCorrelation] = field(default_factory=list)
    hash: str = ""  # content hash of the rule set when it came through `cache.py`
    _plan: RulePlan | None = field(default=None, repr=False, compare=False)

    @property
    def failed(self) -> list[RuleFailure]:
        """Rules that did not load or compile, with the reason."""
        return self.failures

    @property
    def plan(self) -> RulePlan:
        if self._plan is None:
            self._plan = RulePlan(self.rules, self.atoms)
        return self._plan

    def by_id(self) -> dict[str, CompiledRule]:
        return {rule.id: rule for rule in self.rules}

    def subset(self, rule_ids: set[str]) -> CompiledRuleSet:
        """The same compiled rules restricted to `rule_ids` (atoms shared, index rebuilt)."""
        rules = [rule for rule in self.rules if rule.id in rule_ids]
        return CompiledRuleSet(rules, [], self.atoms, [])

    def evaluate(self, batch: pa.RecordBatch) -> pa.Table:
        """One row per (event, rule) hit: `seq` (uint64), `rule_id` (string)."""
        if not batch.num_rows or not self.rules:
            return HITS_SCHEMA.empty_table()
        evaluator = BatchEvaluator(self.plan, self.atoms.atoms, self.plan.trees, batch)
        rule, row = evaluator.matches()
        if not len(row):
            return HITS_SCHEMA.empty_table()
        order = np.lexsort((rule, row))
        seq = batch.column("seq").take(pa.array(row[order]))
        ids = self.plan.rule_ids.take(pa.array(rule[order]))
        return pa.Table.from_arrays([seq.cast(pa.uint64()), ids], schema=HITS_SCHEMA)

    def warm(self) -> CompiledRuleSet:
        """Build every index and automaton now instead of on the first batches."""
        self.plan.build_all()
        return self

    def save(self, path: Path) -> None:
        """Write the compiled set (index included) atomically to `path`."""
        self.warm()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> CompiledRuleSet:
        """Read a set written by `save` (only from a trusted cache directory: pickle)."""
        data = path.read_bytes()
        with paused_gc():
            loaded = pickle.loads(data)
        if not isinstance(loaded, cls):
            raise TypeError(f"{path} does not hold a compiled rule set")
        return loaded


def version_salt() -> str:
    """Engine and pipeline versions: part of every rule's and rule set's content hash."""
    return json.dumps({"engine": ENGINE_VERSION, **pipeline_versions()}, sort_keys=True)


def _unsupported(product: str | None) -> str | None:
    if (product or "").lower() in SUPPORTED_PRODUCTS:
        return None
    return f"log source product {product!r} is not supported (Windows rules only)"


def compile_rules(load: RuleLoad, placeholders: Placeholders | None = None) -> CompiledRuleSet:
    """Compile every Windows rule; others and failures are kept with the reason.

    `placeholders`: values of `|expand` placeholders (name -> values); a rule using one
    without values is a failure "needs placeholder values: %name%"."""
    with paused_gc():
        return _compile_rules(load, placeholders or {})


def _compile_rules(load: RuleLoad, placeholders: Placeholders) -> CompiledRuleSet:
    pipelines = variant_pipelines(placeholders)
    as_written = {"generic": placeholder_pipeline(placeholders)}  # `LoadedRule.as_written`
    salt = version_salt()
    compiled = CompiledRuleSet(failures=list(load.failures))
    seen: dict[str, str] = {}
    for loaded in load.rules:
        reason = _unsupported(loaded.rule.logsource.product)
        if reason is None:
            try:
                chosen = as_written if loaded.as_written else pipelines
                rule = compile_rule(loaded, chosen, compiled.atoms, salt, placeholders)
            except MissingPlaceholders as exc:
                reason = str(exc)
            except (CompileError, SigmaError, ValueError, TypeError, KeyError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            else:
                if rule.id in seen:
                    reason = f"duplicate rule id {rule.id} (also in {seen[rule.id]})"
                else:
                    seen[rule.id] = rule.path
                    compiled.rules.append(rule)
        if reason is not None:
            compiled.failures.append(RuleFailure(loaded.path, reason))
    compiled.correlations, failures = compile_correlations(load.correlations, compiled.rules)
    compiled.failures += failures
    logger.info("compiled %d rules, %d not compiled", len(compiled.rules), len(compiled.failures))
    return compiled

"""Per-case exclusions: which hits of which rules an analyst has silenced.

An exclusion targets rules by Sigma id (in one rule set, or in any) or all rules (`any`),
and holds either nothing (every hit of the rule: a rule switch) or a *matcher*: a Sigma
detection compiled by this engine, so field conditions have Sigma's semantics (names by
key, values case-insensitive, `*` wildcards):

* field conditions (`SubjectUserName: svc_backup`, `Computer: BUILD01`): the event must hold
  each field's value (several values of one field: any of them);
* a Sigma filter document (pySigma's `SigmaFilter`: `logsource`, `filter: {rules,
  selection…, condition}`): its condition is what the rule's hits must *also* satisfy
  (usually `not selection`), so a hit is excluded where it does not hold.

`ExclusionSet.excluded(batch, hits)` gives, per hit, the id of the first exclusion that
silences it (None: the hit is shown). Excluded hits are kept; only their `excluded_by` says
they are hidden.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import yaml
from sigma.exceptions import SigmaError
from sigma.filters import SigmaFilter

from casescope.detect.atoms import CompileError
from casescope.detect.engine import CompiledRuleSet, compile_rules
from casescope.detect.load import RuleLoad, load_document

ANY = "any"


class ExclusionError(CompileError):
    """An exclusion that cannot be compiled (bad filter document, bad condition)."""


@dataclass(frozen=True)
class Exclusion:
    """One exclusion as the engine needs it."""

    id: int
    rule_uids: tuple[str, ...]  # Sigma ids, or (ANY,) for every rule
    source: str | None = None  # one rule set, or None: any set
    conditions: Mapping[str, Sequence[str]] = field(default_factory=dict)
    document: str = ""  # a Sigma filter document (YAML)

    def targets(self, compiled_id: str) -> bool:
        """Whether the exclusion applies to hits of a compiled rule (`<set>:<Sigma id>`)."""
        source, _, uid = compiled_id.rpartition(":")
        if self.source is not None and source != self.source:
            return False
        return ANY in self.rule_uids or uid in self.rule_uids


def _condition_rule(conditions: Mapping[str, Sequence[str]]) -> dict:
    selection = {
        name: list(values) if len(values) > 1 else values[0] for name, values in conditions.items()
    }
    return {
        "detection": {"exclusion": selection, "condition": "exclusion"},
        "logsource": {"product": "windows"},
    }


def parse_filter(document: str) -> tuple[tuple[str, ...], dict]:
    """A Sigma filter document -> (the rule ids it applies to, a rule matching the hits it
    excludes: its selections under `not (condition)`)."""
    try:
        doc = yaml.safe_load(document)
        sigma_filter = SigmaFilter.from_dict(doc)
    except (yaml.YAMLError, SigmaError, TypeError, AttributeError, KeyError) as exc:
        raise ExclusionError(f"not a Sigma filter: {exc}") from None
    refs = sigma_filter.filter.rules
    uids = (ANY,) if isinstance(refs, str) else tuple(ref.reference for ref in refs)
    body = {k: v for k, v in doc["filter"].items() if k != "rules"}
    conditions = body.pop("condition")
    conditions = conditions if isinstance(conditions, list) else [conditions]
    body["condition"] = " and ".join(f"({c})" for c in conditions)
    body["condition"] = f"not ({body['condition']})"
    return uids, {"detection": body, "logsource": doc["logsource"]}


def _compile(exclusion: Exclusion) -> CompiledRuleSet | None:
    if exclusion.document:
        rule = parse_filter(exclusion.document)[1]
    elif exclusion.conditions:
        rule = _condition_rule(exclusion.conditions)
    else:
        return None
    rule = {"title": f"exclusion {exclusion.id}", "id": str(uuid.uuid4()), **rule}
    load = RuleLoad()
    load_document(f"exclusion-{exclusion.id}.yml", yaml.safe_dump(rule).encode(), load)
    compiled = compile_rules(load)
    if load.failures or compiled.failures or len(compiled.rules) != 1:
        reasons = [f.reason for f in [*load.failures, *compiled.failures]]
        raise ExclusionError("; ".join(reasons) or "the exclusion does not compile")
    return compiled


@dataclass
class ExclusionSet:
    """A case's exclusions, compiled; applied to a batch's hits."""

    exclusions: list[Exclusion]
    matchers: dict[int, CompiledRuleSet | None] = field(default_factory=dict)

    @classmethod
    def build(cls, exclusions: Sequence[Exclusion]) -> ExclusionSet:
        ordered = sorted(exclusions, key=lambda e: e.id)
        return cls(ordered, {e.id: _compile(e) for e in ordered})

    def __bool__(self) -> bool:
        return bool(self.exclusions)

    def needs_events(self, rule_ids: Iterable[str]) -> bool:
        """Whether deciding on hits of these compiled rules needs their events."""
        ids = set(rule_ids)
        return any(
            self.matchers[e.id] is not None and any(e.targets(r) for r in ids)
            for e in self.exclusions
        )

    def excluded(self, batch: pa.RecordBatch, hits: pa.Table) -> list[int | None]:
        """Per hit (`seq`, `rule_id` as `evaluate` gives them): the id of the first
        exclusion that silences it, or None. `batch` holds the hits' events (only needed
        when `needs_events`; without them no field condition holds)."""
        seqs = hits.column("seq").to_pylist()
        rules = hits.column("rule_id").to_pylist()
        out: list[int | None] = [None] * len(seqs)
        matched: dict[int, set[int]] = {}
        for exclusion in self.exclusions:
            matcher = self.matchers[exclusion.id]
            if not batch.num_rows or matcher is None:
                continue
            if any(exclusion.targets(r) for r in set(rules)):
                found = matcher.evaluate(batch).column("seq").to_pylist()
                matched[exclusion.id] = set(found)
        for index, (seq, rule) in enumerate(zip(seqs, rules, strict=True)):
            for exclusion in self.exclusions:
                if not exclusion.targets(rule):
                    continue
                held = matched.get(exclusion.id)
                if self.matchers[exclusion.id] is None or (held is not None and seq in held):
                    out[index] = exclusion.id
                    break
        return out

"""Sigma correlation rules: resolve them against the compiled rules, and collect the
fields their windows group by from the batches the rules fired on.

Supported types: `event_count`, `value_count`, `temporal` and `temporal_ordered`, with
`group-by`, field `aliases`, `timespan` and a simple condition (`gte: 10`, or for
value_count `{field: User, gte: 3}`). Value sums/averages/percentiles and extended
(boolean) conditions are kept as failures with that reason. Evaluation: `correlate.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from casescope.detect.atoms import field_key
from casescope.detect.columns import BatchFields
from casescope.detect.load import LoadedCorrelation, RuleFailure
from casescope.detect.rules import CompiledRule


class CorrelationType(StrEnum):
    """The Sigma correlation types casescope evaluates (pySigma's names, lowercased)."""

    EVENT_COUNT = "event_count"
    VALUE_COUNT = "value_count"  # distinct values of `field`
    TEMPORAL = "temporal"  # every referenced rule in the window
    TEMPORAL_ORDERED = "temporal_ordered"  # and in the order the correlation lists them

    @property
    def is_temporal(self) -> bool:
        return self in (CorrelationType.TEMPORAL, CorrelationType.TEMPORAL_ORDERED)


class CorrelationOp(StrEnum):
    """The comparison of a count condition (`gte: 10`); unused by temporal types."""

    LT = "lt"
    LTE = "lte"
    GT = "gt"
    GTE = "gte"
    EQ = "eq"
    NEQ = "neq"


@dataclass
class CompiledCorrelation:
    id: str
    title: str
    level: str
    path: str
    type: CorrelationType
    rules: list[str]  # compiled rule ids, in the order the correlation lists them
    group_by: list[str]
    aliases: dict[str, dict[str, str]]  # alias -> {rule id: field of that rule's events}
    timespan: int  # seconds
    op: CorrelationOp
    count: int
    field: str | None  # value_count: the field whose distinct values are counted
    definition: dict = field(repr=False)


def _reference_ids(refs: list[str], by_ref: dict[str, str]) -> list[str]:
    missing = [r for r in refs if r not in by_ref]
    if missing:
        raise KeyError(f"referenced rules not found: {', '.join(missing)}")
    return [by_ref[r] for r in refs]


def _compile_one(loaded: LoadedCorrelation, by_ref: dict[str, str]) -> CompiledCorrelation:
    rule = loaded.rule
    assert rule is not None
    name = str(rule.type.name).lower()
    condition = rule.condition
    if name not in set(CorrelationType) or not hasattr(condition, "op"):
        raise ValueError(f"correlation type {name} or its condition is not supported")
    rules = _reference_ids([r.reference for r in rule.rules or []], by_ref)
    aliases = {
        alias.alias: {by_ref[ref.reference]: name for ref, name in alias.mapping.items()}
        for alias in rule.aliases
    }
    fieldref = condition.fieldref[0] if isinstance(condition.fieldref, list) else condition.fieldref
    sigma_id = str(rule.id or loaded.path)
    return CompiledCorrelation(
        id=f"{loaded.source}:{sigma_id}" if loaded.source else sigma_id,
        title=rule.title,
        level=rule.level.name.lower() if rule.level else "",
        path=loaded.path,
        type=CorrelationType(name),
        rules=rules,
        group_by=list(rule.group_by or []),
        aliases=aliases,
        timespan=rule.timespan.seconds,
        op=CorrelationOp(condition.op.name.lower()),
        count=int(condition.count),
        field=fieldref,
        definition=loaded.definition,
    )


def _references(rules: list[CompiledRule]) -> dict[str, dict[str, str]]:
    """Per rule set: Sigma id or name -> compiled rule id (references stay in their set)."""
    by_source: dict[str, dict[str, str]] = {}
    for rule in rules:
        refs = by_source.setdefault(rule.source, {})
        refs[rule.sigma_id or rule.id] = rule.id
        if rule.name:
            refs[rule.name] = rule.id
    return by_source


def compile_correlations(
    loaded: list[LoadedCorrelation], rules: list[CompiledRule]
) -> tuple[list[CompiledCorrelation], list[RuleFailure]]:
    """Resolve each correlation's rule references (by id or name) to compiled rules."""
    by_source = _references(rules)
    compiled, failures = [], []
    for item in loaded:
        if item.rule is None:
            continue  # already a failure from loading
        try:
            compiled.append(_compile_one(item, by_source.get(item.source, {})))
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            failures.append(RuleFailure(item.path, f"correlation rule: {exc}"))
    return compiled, failures


def needed_fields(correlations: list[CompiledCorrelation]) -> dict[str, set[str]]:
    """For each rule id: the event fields its detections must carry for the correlations."""
    needed: dict[str, set[str]] = {}
    for corr in correlations:
        for rule_id in corr.rules:
            names = needed.setdefault(rule_id, set())
            for name in [*corr.group_by, *([corr.field] if corr.field else [])]:
                names.add(corr.aliases.get(name, {}).get(rule_id, name))
    return needed


def detection_frame(batch: pa.RecordBatch, hits: pa.Table, names: list[str]) -> pl.DataFrame:
    """The hits of one batch as `ts`, `seq`, `rule_id` and one column per field in `names`
    (Sigma names, matched like rule fields; null where the event lacks the field)."""
    found = pc.index_in(hits.column("seq").combine_chunks(), batch.column("seq"))
    rows = found.to_numpy(zero_copy_only=False).astype(np.int64)
    keys = {field_key(name): number for number, name in enumerate(names)}
    fields = BatchFields(batch, keys)
    columns = {
        "ts": batch.column("ts").take(pa.array(rows)),
        "seq": hits.column("seq").combine_chunks(),
        "rule_id": hits.column("rule_id").combine_chunks(),
    }
    for number in keys.values():
        slots = fields.slot_of(np.full(len(rows), number), rows)
        present = slots >= 0
        values = pa.nulls(len(rows), pa.string())
        if present.any():
            found = fields.strings(np.where(present, slots, 0), lower=False)
            values = pc.if_else(pa.array(present), found, values)
        columns[names[number]] = values
    return pl.from_arrow(pa.table(columns))  # type: ignore[return-value]

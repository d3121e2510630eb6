"""Evaluate correlation rules over a table of detections with sliding windows.

Input: a Polars frame of detections with `ts` (datetime), `rule_id`, an `event` column
(any id the caller wants back, e.g. the seq) and the fields the correlations need (see
`correlations.needed_fields` and `correlations.detection_frame`).

Each detection ends a window `(ts - timespan, ts]` over the detections of its group
(Polars `rolling`). A window that satisfies the condition is a hit; a later window of the
same group overlapping a reported hit is not reported again, so a burst yields one hit.
`temporal` needs every referenced rule in the window, `temporal_ordered` needs them in
the order the correlation lists them. Detections lacking a group-by field are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import polars as pl

from casescope.detect.correlations import CompiledCorrelation, CorrelationOp, CorrelationType

_OPS = {
    CorrelationOp.LT: lambda v, n: v < n,
    CorrelationOp.LTE: lambda v, n: v <= n,
    CorrelationOp.GT: lambda v, n: v > n,
    CorrelationOp.GTE: lambda v, n: v >= n,
    CorrelationOp.EQ: lambda v, n: v == n,
    CorrelationOp.NEQ: lambda v, n: v != n,
}


@dataclass
class CorrelationHit:
    correlation_id: str
    group: dict[str, object]
    first: object  # timestamp of the window's first detection
    last: object  # and of its last one
    value: int  # the count, or number of distinct values, that met the condition
    events: list[object]  # the `event` values of the window's detections


def _group_columns(corr: CompiledCorrelation) -> list[pl.Expr]:
    """Group-by columns, with aliases resolved per rule."""
    out = []
    for name in corr.group_by:
        mapping = corr.aliases.get(name)
        if not mapping:
            out.append(pl.col(name).alias(f"_g_{name}"))
            continue
        expr = pl.lit(None, dtype=pl.String)
        for rule_id, source in mapping.items():
            expr = pl.when(pl.col("rule_id") == rule_id).then(pl.col(source)).otherwise(expr)
        out.append(expr.alias(f"_g_{name}"))
    return out


def _measure(corr: CompiledCorrelation) -> pl.Expr:
    if corr.type is CorrelationType.VALUE_COUNT:
        return pl.col(corr.field or "").drop_nulls().n_unique().alias("_value")
    if corr.type.is_temporal:
        return pl.col("rule_id").n_unique().alias("_value")
    return pl.len().alias("_value")


def _in_order(rules: list[str], window: list[str]) -> bool:
    """Do the window's rule ids (in time order) contain `rules` as a subsequence."""
    position = 0
    for rule_id in window:
        if position < len(rules) and rule_id == rules[position]:
            position += 1
    return position == len(rules)


def _windows(corr: CompiledCorrelation, frame: pl.DataFrame) -> pl.DataFrame:
    keys = [f"_g_{name}" for name in corr.group_by]
    frame = frame.with_columns(_group_columns(corr)).drop_nulls(keys).sort([*keys, "ts"])
    rolled = frame.rolling(
        index_column="ts", period=timedelta(seconds=corr.timespan), group_by=keys or None
    ).agg(_measure(corr), pl.col("rule_id"), pl.col("event"), pl.col("ts").min().alias("_first"))
    if corr.type.is_temporal:
        return rolled.filter(pl.col("_value") == len(set(corr.rules)))
    return rolled


def _evaluate(corr: CompiledCorrelation, detections: pl.DataFrame) -> list[CorrelationHit]:
    frame = detections.filter(pl.col("rule_id").is_in(corr.rules))
    if frame.is_empty():
        return []
    keys = [f"_g_{name}" for name in corr.group_by]
    hits: list[CorrelationHit] = []
    reported: dict[tuple, object] = {}  # group -> end of its last reported window
    check = _OPS[corr.op] if not corr.type.is_temporal else None
    for row in _windows(corr, frame).iter_rows(named=True):
        if check is not None and not check(row["_value"], corr.count):
            continue
        ordered = corr.type is CorrelationType.TEMPORAL_ORDERED
        if ordered and not _in_order(corr.rules, row["rule_id"]):
            continue
        group = tuple(row[k] for k in keys)
        if group in reported and row["_first"] <= reported[group]:
            continue
        reported[group] = row["ts"]
        named = {name: row[f"_g_{name}"] for name in corr.group_by}
        hits.append(
            CorrelationHit(corr.id, named, row["_first"], row["ts"], row["_value"], row["event"])
        )
    return hits


def correlate(
    correlations: list[CompiledCorrelation], detections: pl.DataFrame
) -> list[CorrelationHit]:
    """Every correlation hit over `detections` (see the module docstring for its columns)."""
    return [hit for corr in correlations for hit in _evaluate(corr, detections)]

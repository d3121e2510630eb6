"""Compile a pySigma rule (after its processing pipeline) into one Polars expression.

The expression runs on a per-batch frame (see `frame.py`) with, for each field a rule names,
a column `v:<field>` of the original text and `l:<field>` lowercased, and `l:*` holding all of
an event's values for keyword (field-less) searches. Sigma matching is case-insensitive
unless the value is `cased`; pySigma has already applied the value modifiers (contains,
startswith, windash, base64offset, …) so what remains are strings with wildcards, numbers,
regular expressions, CIDR ranges, comparisons, null/exists checks and field references.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import polars as pl
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SpecialChars,
)

KEYWORDS = "*"
_COMPARE = {
    SigmaCompareExpression.CompareOperators.LT: "__lt__",
    SigmaCompareExpression.CompareOperators.LTE: "__le__",
    SigmaCompareExpression.CompareOperators.GT: "__gt__",
    SigmaCompareExpression.CompareOperators.GTE: "__ge__",
}


class CompileError(Exception):
    """A rule uses something the matcher cannot express; kept with the rule as its reason."""


@dataclass
class Compiled:
    expr: pl.Expr
    fields: set[str] = field(default_factory=set)  # field names the expression reads


def value_col(name: str) -> str:
    return f"v:{name}"


def lower_col(name: str) -> str:
    return f"l:{name}"


def _pattern(value: SigmaString, lowercase: bool) -> tuple[str, str]:
    """Classify a Sigma string: ("eq"|"prefix"|"suffix"|"contains"|"regex", text)."""
    parts = value.s
    literal = all(isinstance(p, str) for p in parts)
    text = "".join(p for p in parts if isinstance(p, str))
    text = text.lower() if lowercase else text
    if literal:
        return "eq", text
    inner = parts[1:-1] if len(parts) >= 2 else []
    star = SpecialChars.WILDCARD_MULTI
    if all(isinstance(p, str) for p in inner):
        if len(parts) == 2 and parts[0] == star and isinstance(parts[1], str):
            return "suffix", text
        if len(parts) == 2 and parts[1] == star and isinstance(parts[0], str):
            return "prefix", text
        if len(parts) == 3 and parts[0] == star and parts[2] == star:
            return "contains", text
        if len(parts) == 1 and parts[0] == star:
            return "any", ""
    regex = "".join(
        re.escape(p.lower() if lowercase else p)
        if isinstance(p, str)
        else (".*" if p == star else ".")
        for p in parts
    )
    return "regex", f"(?s)^{regex}$"


def _string(name: str, value: SigmaString) -> pl.Expr:
    cased = isinstance(value, SigmaCasedString)
    column = pl.col(value_col(name) if cased else lower_col(name))
    kind, text = _pattern(value, lowercase=not cased)
    if kind == "eq":
        return column == text
    if kind == "prefix":
        return column.str.starts_with(text)
    if kind == "suffix":
        return column.str.ends_with(text)
    if kind == "contains":
        return column.str.contains(text, literal=True)
    if kind == "any":
        return column.is_not_null()
    return column.str.contains(text)


def _regex(name: str, value: SigmaRegularExpression) -> pl.Expr:
    flags = "".join(
        {"IGNORECASE": "i", "MULTILINE": "m", "DOTALL": "s"}.get(f.name, "") for f in value.flags
    )
    regexp = str(value.regexp)
    pattern = f"(?{flags}){regexp}" if flags else regexp
    try:
        pl.select(pl.lit("").str.contains(pattern))  # Rust regex: no look-around, no backrefs
    except pl.exceptions.PolarsError as exc:
        raise CompileError(f"regex {regexp!r} is not supported: {exc}") from None
    return pl.col(value_col(name)).str.contains(pattern)


def _field_value(name: str, value: object, fields: set[str]) -> pl.Expr:
    fields.add(name)
    if isinstance(value, SigmaString):
        return _string(name, value)
    if isinstance(value, SigmaNumber):
        return pl.col(lower_col(name)) == str(value.number).lower()
    if isinstance(value, SigmaBool):
        return pl.col(lower_col(name)) == str(value.boolean).lower()
    if isinstance(value, SigmaRegularExpression):
        return _regex(name, value)
    if isinstance(value, SigmaCIDRExpression):
        prefixes = [str(p).rstrip("*") for p in value.expand(wildcard="*")]
        return (
            pl.col(lower_col(name)).str.starts_with(prefixes[0])
            if len(prefixes) == 1
            else (pl.any_horizontal(pl.col(lower_col(name)).str.starts_with(p) for p in prefixes))
        )
    if isinstance(value, SigmaNull):
        column = pl.col(value_col(name))
        return column.is_null() | (column == "")
    if isinstance(value, SigmaExists):
        present = pl.col(value_col(name)).is_not_null()
        return present if value.exists else ~present
    if isinstance(value, SigmaCompareExpression):
        number = pl.col(value_col(name)).cast(pl.Float64, strict=False)
        return getattr(number, _COMPARE[value.op])(float(value.number.number))
    if isinstance(value, SigmaExpansion):  # e.g. windash: any of the alternatives
        return pl.any_horizontal(_field_value(name, v, fields) for v in value.values)
    if isinstance(value, SigmaFieldReference):
        fields.add(value.field)
        return pl.col(lower_col(name)) == pl.col(lower_col(value.field))
    raise CompileError(f"value type {type(value).__name__} is not supported")


def _keyword(value: object, fields: set[str]) -> pl.Expr:
    fields.add(KEYWORDS)
    if isinstance(value, SigmaString):
        kind, text = _pattern(value, lowercase=True)
        column = pl.col(lower_col(KEYWORDS))
        if kind == "regex":
            return column.str.contains(text.removeprefix("(?s)^").removesuffix("$"))
        return column.str.contains(text, literal=True)
    if isinstance(value, SigmaNumber):
        return pl.col(lower_col(KEYWORDS)).str.contains(str(value.number), literal=True)
    if isinstance(value, SigmaExpansion):
        return pl.any_horizontal(_keyword(v, fields) for v in value.values)
    raise CompileError(f"keyword of type {type(value).__name__} is not supported")


def compile_condition(node: object, fields: set[str]) -> pl.Expr:
    if isinstance(node, ConditionAND):
        return pl.all_horizontal(compile_condition(a, fields) for a in node.args)
    if isinstance(node, ConditionOR):
        return pl.any_horizontal(compile_condition(a, fields) for a in node.args)
    if isinstance(node, ConditionNOT):
        return ~compile_condition(node.args[0], fields)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _field_value(node.field, node.value, fields).fill_null(False)
    if isinstance(node, ConditionValueExpression):
        return _keyword(node.value, fields).fill_null(False)
    raise CompileError(f"condition element {type(node).__name__} is not supported")


def constraints(node: object) -> tuple[set[int] | None, set[str] | None]:
    """EventIDs and Channels a rule requires (None: unconstrained), from top-level ANDs."""
    event_ids: set[int] | None = None
    channels: set[str] | None = None
    items = node.args if isinstance(node, ConditionAND) else [node]
    for item in items:
        found = _equalities(item)
        if found is None:
            continue
        name, values = found
        if name == "EventID" and all(isinstance(v, int) for v in values):
            event_ids = set(values) if event_ids is None else event_ids & set(values)
        elif name == "Channel" and all(isinstance(v, str) for v in values):
            channels = set(values) if channels is None else channels & set(values)
    return event_ids, channels


def _equalities(node: object) -> tuple[str, list[object]] | None:
    """`F = a` or `F = a OR F = b …` as (F, [a, b, …])."""
    if isinstance(node, ConditionFieldEqualsValueExpression):
        value = node.value
        if isinstance(value, SigmaNumber):
            return node.field, [int(value.number)]
        if isinstance(value, SigmaString) and value.s and all(isinstance(p, str) for p in value.s):
            return node.field, [str(value).lower()]
        return None
    if isinstance(node, ConditionOR):
        parts = [_equalities(a) for a in node.args]
        if parts and all(p is not None for p in parts) and len({p[0] for p in parts}) == 1:
            return parts[0][0], [v for p in parts for v in p[1]]  # type: ignore[index]
    return None

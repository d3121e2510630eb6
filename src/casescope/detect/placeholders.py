"""Placeholders: `|expand` values (`%known_cdcs%`) the analyst gives, as pySigma variables.

A rule that writes `Attributes|contains|expand: '%known_cdcs%'` means "any of the known
domain controllers"; the list is the analyst's. pySigma keeps such values as `Placeholder`
parts until a pipeline replaces them: `placeholder_pipeline(values)` is one
`ValueListPlaceholderTransformation` over the variables that have values, run before the
log-source pipelines. A rule using a placeholder without values does not compile
(`MissingPlaceholders`: "needs placeholder values: %known_cdcs%"); once values are given it
does, and its content hash covers them (`used_values`), so changing a list re-runs only
the rules that use it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import ValueListPlaceholderTransformation
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import Placeholder, SigmaRegularExpression, SigmaString

from casescope.detect.atoms import CompileError

#: Placeholder name (without %) -> its values.
Placeholders = Mapping[str, Sequence[str]]


class MissingPlaceholders(CompileError):
    """A rule uses placeholders nobody gave values for; it compiles once they are set."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = sorted(names)
        super().__init__("needs placeholder values: " + ", ".join(f"%{n}%" for n in self.names))


def _strings(value: object) -> Iterable[SigmaString]:
    if isinstance(value, SigmaString):
        yield value
    elif isinstance(value, SigmaRegularExpression):
        yield value.regexp


def _items(detection: SigmaDetection) -> Iterable[SigmaDetectionItem]:
    for item in detection.detection_items:
        if isinstance(item, SigmaDetection):
            yield from _items(item)
        else:
            yield item


def rule_placeholders(rule: SigmaRule) -> set[str]:
    """Names of the placeholders a rule's detections use."""
    names: set[str] = set()
    for detection in rule.detection.detections.values():
        for item in _items(detection):
            for value in item.value:
                for string in _strings(value):
                    names.update(p.name for p in string.s if isinstance(p, Placeholder))
    return names


def placeholder_pipeline(values: Placeholders) -> ProcessingPipeline:
    """The pipeline that puts `values` in place of their placeholders (none: empty)."""
    given = {name: [str(v) for v in items] for name, items in values.items() if items}
    if not given:
        return ProcessingPipeline()
    transformation = ValueListPlaceholderTransformation(include=sorted(given))
    item = ProcessingItem(transformation, identifier="casescope_placeholders")
    return ProcessingPipeline(items=[item], vars=given)


def used_values(rule: SigmaRule, values: Placeholders) -> str:
    """The values of the placeholders `rule` uses, as stable text (part of its content
    hash); raises MissingPlaceholders when one of them has none."""
    used = rule_placeholders(rule)
    missing = {name for name in used if not values.get(name)}
    if missing:
        raise MissingPlaceholders(missing)
    return json.dumps({name: [str(v) for v in values[name]] for name in sorted(used)})


def parse_values(text: str) -> list[str]:
    """`DC01,DC02, 10.0.0.5` -> the values, stripped, empty ones dropped, order kept."""
    seen: dict[str, None] = {}
    for value in text.split(","):
        if value.strip():
            seen.setdefault(value.strip(), None)
    return list(seen)

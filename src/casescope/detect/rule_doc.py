"""What an analyst reads of a Sigma rule: description, author, references, detection logic.

The rules table keeps each rule's YAML (the whole file, for files of several rules) and the
columns the engine needs (title, level, status, tags). The rest is read from the YAML when
shown, parsed once per content (`describe` is cached: a detections page describes every rule
with hits). PyYAML is imported when a rule is first described, not with this module: a
command that shows detections without describing a rule (`casescope search`) starts faster
without it (bench/cli.py).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

#: Rule texts described at most (distinct YAML contents) before the oldest are parsed again.
CACHE_RULES = 8192


@dataclass(frozen=True)
class RuleDoc:
    description: str = ""
    author: str = ""
    references: tuple[str, ...] = ()
    falsepositives: tuple[str, ...] = ()
    #: The `logsource` block and the logic (`detection`, or `correlation`) as parsed: written
    #: out as YAML when first read (`logsource`, `detection`). Lists of rules read the
    #: description alone, and PyYAML's emitter is pure Python: dumping every rule's logic
    #: took a third of `casescope detections` (bench/cli.py).
    logsource_block: object = field(default=None, compare=False, repr=False)
    logic_block: object = field(default=None, compare=False, repr=False)

    @functools.cached_property
    def logsource(self) -> str:
        """The `logsource` block as YAML."""
        return _block(self.logsource_block)

    @functools.cached_property
    def detection(self) -> str:
        """The logic as YAML (its selections and condition)."""
        return _block(self.logic_block)


def _texts(value: object) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v) for v in value if v is not None)
    return (str(value),) if value else ()


def _block(value: object) -> str:
    if not value:
        return ""
    import yaml

    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=100).rstrip()


def _pick(docs: list[object], rule_uid: str, nth: int) -> Mapping[str, object] | None:
    """The document of the rule: the one with its id, else the `nth` rule of the file."""
    rules = [d for d in docs if isinstance(d, Mapping)]
    for doc in rules:
        if str(doc.get("id", "")) == rule_uid:
            return doc
    with_logic = [d for d in rules if "detection" in d or "correlation" in d]
    if 0 <= nth < len(with_logic):
        return with_logic[nth]
    return rules[0] if rules else None


@functools.lru_cache(maxsize=CACHE_RULES)
def describe(text: str, rule_uid: str, nth: int = 0) -> RuleDoc:
    """The rule `rule_uid` (else the `nth`, from 0, of the file) of the YAML `text`; an
    empty description when the text does not parse (it was imported, so it did once)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # a safe loader (C or Python)
    try:
        docs = list(yaml.load_all(text, Loader=loader))
    except yaml.YAMLError as exc:
        logger.warning("rule %s: YAML does not parse: %s", rule_uid, exc)
        return RuleDoc()
    doc = _pick(docs, rule_uid, nth)
    if doc is None:
        return RuleDoc()
    logic = doc.get("detection") or doc.get("correlation")
    return RuleDoc(
        description=str(doc.get("description") or "").strip(),
        author=str(doc.get("author") or ""),
        references=_texts(doc.get("references")),
        falsepositives=_texts(doc.get("falsepositives")),
        logsource_block=doc.get("logsource"),
        logic_block=logic,
    )


def nth_of_path(row_path: str) -> int:
    """Which rule of its file a rules-table path is (`x.yml` 0, `x.yml#2` 1, ...)."""
    _, sep, number = row_path.rpartition("#")
    return int(number) - 1 if sep and number.isdigit() else 0

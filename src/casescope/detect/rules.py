"""One compiled rule: metadata for the lead's tables and UI, and the tree the engine runs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sigma.exceptions import SigmaError
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule

from casescope.detect.atoms import AtomTable, CompileError
from casescope.detect.compile import FALSE, Node, condition_node, equal_values, or_, required
from casescope.detect.load import LoadedRule
from casescope.detect.pipelines import alias_pipeline, process
from casescope.detect.placeholders import Placeholders, used_values

#: Bumped whenever the same rule and events may give different detections.
ENGINE_VERSION = "5"


@dataclass(slots=True)
class CompiledRule:
    id: str  # Sigma id (the path when the rule has none)
    title: str
    level: str  # informational low medium high critical ("" when unset)
    status: str
    tags: list[str]  # e.g. attack.t1059.001, attack.execution
    path: str
    logsource: dict[str, str]  # product/category/service as written in the rule
    sha256: str  # of the rule's YAML file
    content_hash: str  # file, position in it, engine and pipeline versions: re-run on change
    tree: Node
    variants: tuple[str, ...]  # pipeline variants OR-ed in `tree` ("generic": none mapped it)
    event_ids: frozenset[int] | None  # EventIDs the rule requires (None: any)
    channels: frozenset[str] | None  # Channels (lowercase) the rule requires (None: any)
    author: str = ""
    description: str = ""
    name: str = ""  # the rule's `name:`, which correlation rules may reference
    details: str = ""  # Hayabusa's `details` template (`details.render_details`)
    sigma_id: str = ""  # the id as written (`id` is qualified by the rule set, if any)
    source: str = ""  # the rule set (empty when compiled from files directly)

    @property
    def attack(self) -> list[str]:
        """ATT&CK tags only (technique ids and tactics)."""
        return [t for t in self.tags if t.startswith("attack.")]


def _logsource(rule: SigmaRule) -> dict[str, str]:
    source = rule.logsource
    items = (("product", source.product), ("category", source.category))
    return {k: v for k, v in (*items, ("service", source.service)) if v}


def _variant_conditions(
    rule: SigmaRule, pipelines: dict[str, ProcessingPipeline]
) -> tuple[list[tuple[str, list[object]]], list[str]]:
    """(variant name, parsed conditions) of the variants that mapped the log source,
    or of all variants when none did; and the errors of variants that failed."""
    mapped, unmapped, errors = [], [], []
    for name, pipeline in pipelines.items():
        try:
            processed, is_mapped = process(rule, pipeline)
            conditions = [c.parsed for c in processed.detection.parsed_condition]
        except SigmaError as exc:
            errors.append(f"{name}: {exc}")
            continue
        (mapped if is_mapped else unmapped).append((name, conditions))
    if mapped:
        return mapped, errors
    return [("generic", unmapped[0][1])] if unmapped else [], errors


def content_hash(loaded: LoadedRule, salt: str, values: str = "") -> str:
    """A rule's content hash: changes with its file, its place there, engine or pipelines,
    and the values of the placeholders it uses (`values`, when it uses any)."""
    text = f"{salt}\n{loaded.sha256}\n{loaded.index}"
    if values:
        text += f"\n{values}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def compile_rule(
    loaded: LoadedRule,
    pipelines: dict[str, ProcessingPipeline],
    table: AtomTable,
    salt: str,
    placeholders: Placeholders | None = None,
) -> CompiledRule:
    """Process `loaded` under each pipeline variant and compile the OR of the variants
    (`pipelines` must replace the `placeholders` the rule uses: `variant_pipelines`)."""
    rule = loaded.rule
    values = used_values(rule, placeholders or {})
    if loaded.aliases:
        pipelines = {name: alias_pipeline(loaded.aliases) + p for name, p in pipelines.items()}
    variants, errors = _variant_conditions(rule, pipelines)
    if not variants:
        raise CompileError("; ".join(errors) or "no condition")
    tree = or_([condition_node(c, table) for _, conditions in variants for c in conditions])
    if tree == FALSE:
        raise CompileError(
            "can never match: its detection requires two values of one field (e.g. a "
            "Channel its log source contradicts)"
        )
    clauses = required(tree)
    event_ids = equal_values(clauses, table, "@event_id")
    channels = equal_values(clauses, table, "@channel")
    return CompiledRule(
        id=loaded.uid,
        title=rule.title,
        level=rule.level.name.lower() if rule.level else "",
        status=rule.status.name.lower() if rule.status else "",
        tags=list(loaded.tags),
        path=loaded.path,
        logsource=_logsource(rule),
        sha256=loaded.sha256,
        content_hash=content_hash(loaded, salt, values if values != "{}" else ""),
        tree=tree,
        variants=tuple(name for name, _ in variants),
        event_ids=_ints(event_ids),
        channels=None if channels is None else frozenset(channels),
        author=rule.author or "",
        description=rule.description or "",
        name=rule.name or "",
        details=loaded.details,
        sigma_id=loaded.sigma_id,
        source=loaded.source,
    )


def _ints(values: set[str] | None) -> frozenset[int] | None:
    if values is None:
        return None
    try:
        return frozenset(int(v) for v in values)
    except ValueError:
        return None

"""A case's detections on the ATT&CK matrix, and as an ATT&CK Navigator layer.

Rules name tactics and techniques in their tags but not which technique serves which
tactic, so a rule counts under every (tactic, technique) pair it names: a rule tagged
`attack.stealth attack.defense-impairment attack.t1562.001` adds its hits to T1562.001 under
both tactics. A rule with tactics but no technique counts under each tactic as "no
technique"; one with techniques but no tactic goes to a "no tactic" column; one with
neither is "not mapped to ATT&CK".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from casescope.detect.attack import TACTICS, Tactic, parent
from casescope.detect.levels import level_rank
from casescope.errors import NotFoundError
from casescope.model.db import Database
from casescope.model.tables import Case
from casescope.services.detections import DetectionFilter, RuleHits, rule_hits

#: The Navigator layer format written, and the oldest Navigator that reads it.
LAYER_VERSION = "4.5"
NAVIGATOR_VERSION = "5.1.0"
#: Gradient of the layer's scores (hits): light to dark red.
GRADIENT = ("#fff5f0", "#fb6a4a", "#a50f15")
#: Rule titles named in a technique's comment, at most.
COMMENT_RULES = 20


@dataclass
class Cell:
    """One technique under one tactic ("" for a tactic's rules that name no technique)."""

    technique: str
    hits: int = 0
    rules: int = 0
    level: str = ""  # the highest level of its rules

    def add(self, item: RuleHits) -> None:
        self.hits += item.hits
        self.rules += 1
        if item.rule.level_rank > level_rank(self.level):
            self.level = item.rule.level


@dataclass
class Column:
    """A tactic (None: rules that name techniques but no tactic) and its techniques."""

    tactic: Tactic | None
    hits: int = 0
    rules: int = 0
    cells: dict[str, Cell] = field(default_factory=dict)

    def add(self, item: RuleHits, techniques: Sequence[str]) -> None:
        self.hits += item.hits
        self.rules += 1
        for technique in techniques or ("",):
            self.cells.setdefault(technique, Cell(technique)).add(item)

    @property
    def techniques(self) -> list[Cell]:
        """Most hits first; "no technique" last."""
        return sorted(self.cells.values(), key=lambda c: (not c.technique, -c.hits, c.technique))


@dataclass
class Matrix:
    columns: list[Column]  # every tactic in matrix order, then "no tactic" if any
    unmapped_hits: int = 0
    unmapped_rules: int = 0

    @property
    def hits(self) -> int:
        return sum(c.hits for c in self.columns)


def build_matrix(items: Iterable[RuleHits]) -> Matrix:
    """The matrix of the rules `items` (see the module's doc for how rules are counted)."""
    columns = {t.short: Column(t) for t in TACTICS}
    untactic = Column(None)
    matrix = Matrix(list(columns.values()))
    for item in items:
        attack = item.rule.attack
        if not attack.tactics and not attack.techniques:
            matrix.unmapped_hits += item.hits
            matrix.unmapped_rules += 1
            continue
        for found in attack.tactics:
            columns[found.short].add(item, attack.techniques)
        if not attack.tactics:
            untactic.add(item, attack.techniques)
    if untactic.rules:
        matrix.columns.append(untactic)
    return matrix


@dataclass
class _Technique:
    hits: int = 0
    rules: list[tuple[int, str]] = field(default_factory=list)  # (hits, title)


def _techniques(items: Iterable[RuleHits]) -> dict[str, _Technique]:
    found: dict[str, _Technique] = {}
    for item in items:
        for technique in item.rule.attack.techniques:
            entry = found.setdefault(technique, _Technique())
            entry.hits += item.hits
            entry.rules.append((item.hits, item.rule.title))
    return found


def _comment(entry: _Technique) -> str:
    ranked = sorted(entry.rules, key=lambda r: (-r[0], r[1]))
    named = [f"{title} ({hits})" for hits, title in ranked[:COMMENT_RULES]]
    more = len(ranked) - COMMENT_RULES
    return "; ".join(named) + (f"; and {more} more rules" if more > 0 else "")


def navigator_layer(
    items: Iterable[RuleHits], name: str, description: str = "", now: datetime | None = None
) -> dict[str, object]:
    """An ATT&CK Navigator layer (format 4.5, enterprise) of the techniques that fired: each
    scored with its hits, its comment the rules (with their hits) that named it."""
    found = _techniques(items)
    parents = {parent(t) for t in found if "." in t}
    techniques = [
        {
            "techniqueID": technique,
            "score": entry.hits,
            "comment": _comment(entry),
            "enabled": True,
            **({"showSubtechniques": True} if technique in parents else {}),
        }
        for technique, entry in sorted(found.items())
    ]
    top = max((e.hits for e in found.values()), default=0)
    made = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "name": name,
        "versions": {"navigator": NAVIGATOR_VERSION, "layer": LAYER_VERSION},
        "domain": "enterprise-attack",
        "description": description,
        "sorting": 3,  # by score, highest first
        "layout": {"layout": "side", "showID": True, "expandedSubtechniques": "annotated"},
        "hideDisabled": False,
        "techniques": techniques,
        "gradient": {"colors": list(GRADIENT), "minValue": 0, "maxValue": max(top, 1)},
        "legendItems": [],
        "metadata": [{"name": "generated", "value": made}, {"name": "by", "value": "casescope"}],
    }


def case_layer(db: Database, filters: DetectionFilter) -> dict[str, object]:
    """The Navigator layer of a case's detections that pass `filters`."""
    with db.read() as session:
        case = session.get(Case, filters.case_id)
        if case is None:
            raise NotFoundError(f"no case {filters.case_id}")
        name = case.name
    description = f"Sigma detections of case {name!r} in casescope (score: hits)"
    return navigator_layer(rule_hits(db, filters), f"casescope: {name}", description)

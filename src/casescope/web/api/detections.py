"""Detections of a case: by rule, on the ATT&CK matrix, as a timeline, one rule, and an
ATT&CK Navigator layer (over services/detections.py, detection_timeline.py, attack_matrix.py).

Every route takes the same filters (`DetectionParams`); a value that is not one (an unknown
level, status or tactic, a malformed technique id) is a 400 with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from casescope.detect.attack import technique_url
from casescope.services import attack_matrix as am
from casescope.services import detection_timeline as dt
from casescope.services.detections import (
    MAX_TEXT,
    DetectionFilter,
    DetectionFilterError,
    RuleHits,
    RuleSort,
    Shown,
    parse_filter_values,
    rule_hits,
)
from casescope.services.rule_details import RuleDetails, rule_details
from casescope.web.ids import MAX_ID, PathId
from casescope.web.security import CaseRead, CaseScope, State
from casescope.web.state import WebState

router = APIRouter(prefix="/api/cases/{case_id}/detections", tags=["detections"])

#: Rules per page of the by-rule table.
RULES_PAGE = 100


@dataclass(frozen=True)
class DetectionParams:
    """The detection filters as they arrive (checked by `filters`), and how to link them."""

    level: str = ""
    levels: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    host: str = ""
    tactic: str = ""
    technique: str = ""
    q: str = ""
    rule_id: int | None = None
    source: str = ""
    hits: Shown = Shown.VISIBLE

    def filters(self, case_id: int) -> DetectionFilter:
        """The checked filter; DetectionFilterError for a value that is not one."""
        return DetectionFilter(
            case_id,
            min_level=self.level or None,
            levels=self.levels,
            statuses=self.status,
            host=self.host or None,
            tactic=self.tactic or None,
            technique=self.technique or None,
            text=self.q,
            rule_id=self.rule_id,
            source=self.source or None,
            shown=self.hits,
        )

    def query(self, **changes: object) -> str:
        """These filters as a query string, with `changes` (None or "" drops a parameter)."""
        values: dict[str, object] = {
            "level": self.level,
            "levels": list(self.levels),
            "status": list(self.status),
            "host": self.host,
            "tactic": self.tactic,
            "technique": self.technique,
            "q": self.q,
            "rule_id": self.rule_id,
            "source": self.source,
            "hits": "" if self.hits is Shown.VISIBLE else self.hits.value,
        }
        values.update(changes)
        kept = {k: v for k, v in values.items() if v not in (None, "", [])}
        return urlencode(kept, doseq=True)


def detection_params(
    level: Annotated[str, Query(max_length=20, description="Minimum Sigma level.")] = "",
    levels: Annotated[
        list[str], Query(description="Only these levels (repeat, or comma-separated).")
    ] = [],  # noqa: B006 - FastAPI copies defaults
    status: Annotated[
        list[str], Query(description="Only rules of these statuses (repeat, or comma-separated).")
    ] = [],  # noqa: B006
    host: Annotated[str, Query(max_length=255, description="Only hits on this computer.")] = "",
    tactic: Annotated[
        str, Query(max_length=40, description="ATT&CK tactic: name or id (execution, TA0002).")
    ] = "",
    technique: Annotated[
        str, Query(max_length=20, description="ATT&CK technique id; T1059 takes T1059.001.")
    ] = "",
    q: Annotated[
        str, Query(max_length=MAX_TEXT, description="Text in the rule's title/id/description.")
    ] = "",
    rule_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only this rule (its id).")
    ] = None,
    source: Annotated[
        str, Query(max_length=200, description="Only this rule set (`rules import --name`).")
    ] = "",
    hits: Annotated[
        Shown, Query(description="Hits shown, hidden by the case's exclusions, or all.")
    ] = Shown.VISIBLE,
) -> DetectionParams:
    return DetectionParams(
        level.strip(),
        parse_filter_values(levels)[:10],
        parse_filter_values(status)[:10],
        host,
        tactic.strip(),
        technique.strip(),
        q,
        rule_id,
        source.strip(),
        hits,
    )


Params = Annotated[DetectionParams, Depends(detection_params)]


def checked(params: DetectionParams, scope: CaseScope) -> DetectionFilter:
    """The filter of a request, or a 400 that says which value is wrong."""
    try:
        return params.filters(scope.case_id)
    except DetectionFilterError as exc:
        raise HTTPException(400, str(exc)) from None


def prepare(state: WebState, case_id: int) -> None:
    """Detections stored before their computer was recorded get it (once per case)."""
    dt.fill_hosts(state.db, state.index.use, case_id)


# ---------------------------------------------------------------- response models


class HostHits(BaseModel):
    host: str = Field(description='A computer ("" when not known).')
    hits: int


class RuleSummary(BaseModel):
    id: int = Field(description="The rule's id here (for /detections/rules/{id}).")
    rule_uid: str = Field(description="The Sigma rule id.")
    title: str
    level: str
    status: str
    description: str
    tactics: list[str] = Field(description="ATT&CK tactics (short names), in matrix order.")
    techniques: list[str] = Field(description="ATT&CK technique ids (T1059, T1059.001).")
    source: str = Field(description="The rule set (`rules import --name`).")
    hits: int = Field(description="Hits of the kind asked for (`hits=`: visible by default).")
    excluded: int = Field(description="Hits the case's exclusions hide (kept, restorable).")
    hosts: list[HostHits] = Field(description="Every computer it fired on, most hits first.")
    first_seen: datetime | None
    last_seen: datetime | None


class RulesPage(BaseModel):
    total_rules: int = Field(description="Rules that fired and pass the filters.")
    total_hits: int
    offset: int
    rules: list[RuleSummary] = Field(description=f"At most {RULES_PAGE} rules from `offset`.")


def summary_model(item: RuleHits) -> RuleSummary:
    rule = item.rule
    return RuleSummary(
        id=rule.id,
        rule_uid=rule.rule_uid,
        title=rule.title,
        level=rule.level,
        status=rule.status,
        description=rule.description,
        tactics=[t.short for t in rule.attack.tactics],
        techniques=list(rule.attack.techniques),
        source=rule.source,
        hits=item.hits,
        excluded=item.excluded,
        hosts=[HostHits(host=h, hits=n) for h, n in item.hosts],
        first_seen=item.first_seen,
        last_seen=item.last_seen,
    )


class MatrixCell(BaseModel):
    technique: str | None = Field(description="Technique id; null: the tactic's rules without one.")
    url: str | None = Field(description="The technique's page on attack.mitre.org.")
    hits: int
    rules: int
    level: str = Field(description="The highest level of its rules.")


class MatrixColumn(BaseModel):
    tactic: str | None = Field(description="Tactic short name; null: rules with no tactic.")
    tactic_id: str | None
    name: str
    hits: int = Field(description="Hits of the rules naming this tactic (each rule once).")
    rules: int
    techniques: list[MatrixCell] = Field(description="Most hits first.")


class MatrixOut(BaseModel):
    columns: list[MatrixColumn] = Field(description="Every enterprise tactic, in matrix order.")
    unmapped_hits: int = Field(description="Hits of rules with no ATT&CK tactic or technique.")
    unmapped_rules: int


def matrix_model(matrix: am.Matrix) -> MatrixOut:
    columns = [
        MatrixColumn(
            tactic=c.tactic.short if c.tactic else None,
            tactic_id=c.tactic.id if c.tactic else None,
            name=c.tactic.name if c.tactic else "No tactic",
            hits=c.hits,
            rules=c.rules,
            techniques=[
                MatrixCell(
                    technique=cell.technique or None,
                    url=technique_url(cell.technique) if cell.technique else None,
                    hits=cell.hits,
                    rules=cell.rules,
                    level=cell.level,
                )
                for cell in c.techniques
            ],
        )
        for c in matrix.columns
    ]
    return MatrixOut(
        columns=columns, unmapped_hits=matrix.unmapped_hits, unmapped_rules=matrix.unmapped_rules
    )


class TimelineHit(BaseModel):
    ts: datetime | None = Field(description="The event's time (UTC); null if it has none.")
    computer: str
    level: str
    rule_title: str
    rule_uid: str
    rule_id: int
    tactics: list[str]
    techniques: list[str]
    channel: str
    event_id: int | None
    record_id: int | None
    summary: str = Field(description="The event's one-line summary (fields that matter).")
    file_id: int
    seq: int


class TimelinePage(BaseModel):
    hits: list[TimelineHit] = Field(description="In time order.")
    next_cursor: str | None = Field(description="Pass back as `cursor`; null at the end.")


def timeline_model(rows: list[dt.TimelineRow], cursor: dt.TimelineCursor | None) -> TimelinePage:
    hits = [TimelineHit.model_validate(r, from_attributes=True) for r in rows]
    return TimelinePage(hits=hits, next_cursor=cursor.encode() if cursor else None)


class RuleOut(RuleSummary):
    author: str
    references: list[str]
    falsepositives: list[str]
    tags: list[str]
    logsource: str = Field(description="The rule's logsource block (YAML).")
    detection: str = Field(description="The rule's detection block (YAML): its logic.")
    path: str
    enabled: bool


def rule_model(details: RuleDetails) -> RuleOut:
    base = summary_model(details.hits).model_dump()
    doc = details.doc
    return RuleOut(
        **base,
        author=doc.author,
        references=list(doc.references),
        falsepositives=list(doc.falsepositives),
        tags=list(details.hits.rule.tags),
        logsource=doc.logsource,
        detection=doc.detection,
        path=details.path,
        enabled=details.enabled,
    )


class NavigatorVersions(BaseModel):
    navigator: str
    layer: str


class NavigatorTechnique(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    technique_id: str = Field(alias="techniqueID", pattern=r"^T\d{4}(\.\d{3})?$")
    score: int = Field(description="Hits of the rules that name it.")
    comment: str = Field(description="Those rules, with their hits.")
    enabled: bool = True
    show_subtechniques: bool | None = Field(None, alias="showSubtechniques")


class NavigatorGradient(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    colors: list[str]
    min_value: int = Field(alias="minValue")
    max_value: int = Field(alias="maxValue")


class NavigatorLayer(BaseModel):
    """An ATT&CK Navigator layer (format 4.5): open it in the ATT&CK Navigator."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")
    name: str
    versions: NavigatorVersions
    domain: str
    description: str
    techniques: list[NavigatorTechnique]
    gradient: NavigatorGradient


# ---------------------------------------------------------------- routes


@router.get("", response_model=RulesPage)
def by_rule(
    scope: CaseRead,
    state: State,
    params: Params,
    sort: RuleSort = RuleSort.HITS,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> RulesPage:
    """The rules that fired in the case and pass the filters, with their hits, hosts and
    first and last time seen; a page of `RULES_PAGE` rules from `offset`."""
    filters = checked(params, scope)
    prepare(state, scope.case_id)
    items = rule_hits(state.db, filters, sort)
    return RulesPage(
        total_rules=len(items),
        total_hits=sum(i.hits for i in items),
        offset=offset,
        rules=[summary_model(i) for i in items[offset : offset + RULES_PAGE]],
    )


@router.get("/matrix", response_model=MatrixOut)
def matrix(scope: CaseRead, state: State, params: Params) -> MatrixOut:
    """The hits on the ATT&CK matrix: tactics in matrix order, their techniques with hits
    (a rule naming several tactics counts under each)."""
    filters = checked(params, scope)
    prepare(state, scope.case_id)
    return matrix_model(am.build_matrix(rule_hits(state.db, filters)))


@router.get("/timeline", response_model=TimelinePage)
def timeline(
    scope: CaseRead,
    state: State,
    params: Params,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=dt.MAX_PAGE)] = 50,
) -> TimelinePage:
    """Every hit in time order with its event's summary, a keyset page at a time (pass
    `next_cursor` back as `cursor`)."""
    filters = checked(params, scope)
    try:
        after = dt.TimelineCursor.decode(cursor) if cursor else None
    except DetectionFilterError as exc:
        raise HTTPException(400, str(exc)) from None
    prepare(state, scope.case_id)
    rows, following = dt.timeline_page(state.db, state.index.use, filters, after, limit)
    return timeline_model(rows, following)


@router.get("/rules/{rule_id}", response_model=RuleOut)
def rule(scope: CaseRead, state: State, rule_id: PathId) -> RuleOut:
    """One rule: what it is, its logic, and its hits in this case (hits: /timeline?rule_id)."""
    prepare(state, scope.case_id)
    details = rule_details(state.db, scope.case_id, rule_id)
    if details is None:
        raise HTTPException(404, "no such rule")
    return rule_model(details)


@router.get("/navigator", response_model=NavigatorLayer, response_model_exclude_none=True)
def navigator(scope: CaseRead, state: State, params: Params) -> JSONResponse:
    """The case's techniques as an ATT&CK Navigator layer (JSON, a download): each scored
    with its hits, its comment the rules that fired."""
    filters = checked(params, scope)
    layer = am.case_layer(state.db, filters)
    NavigatorLayer.model_validate(layer)  # what the OpenAPI description promises
    name = f"case{scope.case_id}-attack-layer.json"
    return JSONResponse(layer, headers={"Content-Disposition": f'attachment; filename="{name}"'})

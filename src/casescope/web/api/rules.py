"""Sigma rule sets (admins only, CSRF as every change): the imported sets with their counts,
the rules with why one cannot run, import (an uploaded zip or YAML files, or a folder on
the server), and enable/disable by level, status, tag, rule set, path or id.

The same code as `casescope rules import/list/enable/disable` (store/rulesets.py); a change
re-activates the compiled set at once; `casescope rules run` (or a re-run of Sigma on the
Evidence page) applies it to files already processed.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Query, UploadFile
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from casescope.detect.levels import SigmaLevel, SigmaStatus
from casescope.errors import CasescopeError
from casescope.model.tables import Rule
from casescope.services import rule_sets
from casescope.services.uploads import new_upload_path, upload_folder
from casescope.store.rule_removal import RemovedRules
from casescope.store.rulesets import (
    ImportReport,
    RuleSelector,
    UnknownRuleSet,
    delete_rule_set,
    set_enabled,
)
from casescope.web.api.models import IsoTime
from casescope.web.security import Admin, Principal, State
from casescope.web.state import WebState

router = APIRouter(prefix="/api/rules", tags=["rules"])

SetName = Annotated[str, Field(max_length=rule_sets.MAX_SET_NAME)]
Tag = Annotated[str, Field(min_length=1, max_length=200)]


class RuleSetOut(BaseModel):
    source: str = Field(description="The rule set's name (given at import).")
    rules: int
    enabled: int = Field(description="Rules that run: enabled and compiled.")
    failed: int = Field(description="Rules that cannot run (see `error`).")
    warned: int = Field(description="Rules loaded with warnings.")
    imported_at: IsoTime | None


class ImportedRuleOut(BaseModel):
    id: int
    rule_uid: str = Field(description="The Sigma id (the path when the rule has none).")
    title: str
    level: str
    status: str
    tags: list[str]
    source: str
    path: str
    enabled: bool
    error: str | None = Field(description="Why it cannot run (load or compile error).")
    warnings: list[str] = Field(description="What was fixed for pySigma to load it.")


class RulesOut(BaseModel):
    total: int = Field(description="Rules matching the filters.")
    offset: int
    rules: list[ImportedRuleOut]


class RuleImportOut(BaseModel):
    source: str
    rules: int = Field(description="Rules and correlation rules loaded.")
    failed: int = Field(description="Files or rules that cannot run.")
    warned: int
    off: int = Field(description="Imported disabled: the set does not run them by default.")
    removed: RemovedOut = Field(
        description="Rules of the set this import no longer holds, removed with their hits."
    )


class FolderImport(BaseModel):
    path: Annotated[str, Field(min_length=1, max_length=4096)]
    name: SetName | None = None


class RuleSelection(BaseModel):
    """Every given criterion must hold; at least one of ids, levels, statuses, tags, path."""

    ids: Annotated[list[Tag], Field(max_length=1000)] = []
    levels: list[SigmaLevel] = []
    statuses: list[SigmaStatus] = []
    tags: Annotated[
        list[Tag], Field(max_length=100, description="Any of these (`*` matches any text).")
    ] = []
    sources: Annotated[list[SetName], Field(max_length=100)] = []
    path: Annotated[str | None, Field(max_length=1000, description="Glob on the path.")] = None

    def selector(self) -> RuleSelector:
        return RuleSelector(
            tuple(self.ids),
            tuple(self.levels),
            tuple(self.statuses),
            self.path or None,
            tuple(self.tags),
            tuple(self.sources),
        )


class RemovedOut(BaseModel):
    rules: int = Field(description="Rules removed.")
    hits: int = Field(description="Their detections removed, in every case.")
    cases: int = Field(description="Cases those detections were in.")


class ChangedOut(BaseModel):
    changed: int = Field(description="Rules whose state changed.")


def rule_out(row: Rule) -> ImportedRuleOut:
    return ImportedRuleOut(
        id=row.id,
        rule_uid=row.rule_uid,
        title=row.title,
        level=row.level,
        status=row.status,
        tags=row.tags.split(),
        source=row.source,
        path=row.path,
        enabled=row.enabled,
        error=row.error,
        warnings=(row.warnings or "").splitlines(),
    )


def report_out(report: ImportReport) -> RuleImportOut:
    return RuleImportOut.model_validate(report, from_attributes=True)


def actor(admin: Principal) -> str:
    return f"web:{admin.name}"


def import_uploaded(
    state: WebState, admin: Principal, files: list[UploadFile], name: str
) -> ImportReport:
    """Copy the uploaded files into a fresh folder under the home's tmp/ and import them;
    a refused upload is a 400."""
    with upload_folder(state.settings) as folder:
        for upload in files:
            with new_upload_path(folder, upload.filename).open("wb") as out:
                shutil.copyfileobj(upload.file, out)
        label = name.strip() or _default_name(files)
        try:
            return rule_sets.import_upload(state.settings, state.db, folder, label, actor(admin))
        except CasescopeError as exc:
            raise HTTPException(400, str(exc)) from None


def import_server_folder(state: WebState, admin: Principal, body: FolderImport) -> ImportReport:
    """Import a folder (or .zip) on the server's disk; a refused one is a 400."""
    try:
        return rule_sets.import_folder(
            state.settings, state.db, Path(body.path), body.name, actor(admin)
        )
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None


def _default_name(files: list[UploadFile]) -> str:
    """The zip's name without `.zip`, else "upload"."""
    first = Path(files[0].filename or "") if files else Path()
    return first.stem if first.suffix.lower() == ".zip" and first.stem else "upload"


def delete_set(state: WebState, admin: Principal, name: str) -> RemovedRules:
    """Delete the rule set `name` with its hits; an unknown set is a 404."""
    try:
        return delete_rule_set(state.db, state.settings, name, actor(admin))
    except UnknownRuleSet as exc:
        raise HTTPException(404, str(exc)) from None


def change(state: WebState, admin: Principal, selection: RuleSelection, enabled: bool) -> int:
    try:
        return set_enabled(state.db, state.settings, selection.selector(), enabled, actor(admin))
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None


@router.get("/sets", response_model=list[RuleSetOut])
def list_sets(state: State, admin: Admin) -> list[RuleSetOut]:
    """Every imported rule set with how many of its rules run, cannot run, or warned."""
    return [
        RuleSetOut.model_validate(s, from_attributes=True) for s in rule_sets.rule_sets(state.db)
    ]


@router.get("", response_model=RulesOut)
def list_rules(
    state: State,
    admin: Admin,
    source: Annotated[SetName | None, Query()] = None,
    level: SigmaLevel | None = None,
    status: SigmaStatus | None = None,
    tag: Annotated[Tag | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=200, description="In title, path or id.")] = None,
    failed: Annotated[bool, Query(description="Only rules that cannot run.")] = False,
    enabled: bool | None = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = rule_sets.RULES_PAGE,
) -> RulesOut:
    """Imported rules by set and path, filtered, one page (`offset`, `limit`)."""
    wanted = rule_sets.RuleFilter(source, level, status, tag, q, failed, enabled)
    page = rule_sets.find_rules(state.db, wanted, offset, limit)
    return RulesOut(total=page.total, offset=offset, rules=[rule_out(r) for r in page.rules])


@router.post("/import", response_model=RuleImportOut)
def import_rules(
    state: State,
    admin: Admin,
    files: Annotated[list[UploadFile], File(description="One .zip, or .yml/.yaml files.")],
    name: Annotated[SetName, Form(description="The set's name (default: the zip's).")] = "",
) -> RuleImportOut:
    """Import a rule set (replacing one of the same name); rules that cannot load or compile
    are kept with the reason."""
    return report_out(import_uploaded(state, admin, files, name))


@router.post("/import-folder", response_model=RuleImportOut)
def import_folder(body: FolderImport, state: State, admin: Admin) -> RuleImportOut:
    """Import a folder (or .zip) on the server's disk, as `casescope rules import` does."""
    return report_out(import_server_folder(state, admin, body))


@router.post("/enable", response_model=ChangedOut)
def enable(body: RuleSelection, state: State, admin: Admin) -> ChangedOut:
    return ChangedOut(changed=change(state, admin, body, True))


@router.post("/disable", response_model=ChangedOut)
def disable(body: RuleSelection, state: State, admin: Admin) -> ChangedOut:
    return ChangedOut(changed=change(state, admin, body, False))


@router.delete(
    "/sets/{name}", response_model=RemovedOut, responses={404: {"description": "No such set."}}
)
def delete_rule_set_route(
    name: Annotated[SetName, PathParam()], state: State, admin: Admin
) -> RemovedOut:
    """Delete a rule set: its rules and their detections in every case (audited as
    `rules.delete`); the active set is compiled again without them."""
    return RemovedOut.model_validate(delete_set(state, admin, name), from_attributes=True)

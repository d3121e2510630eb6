"""IOCs of a case: list, add, import a file, enable/disable, remove (over services/iocs.py).

Adding or enabling hunts only the new IOCs, in the index `serve` owns (seconds, every other
hit untouched); files not in the index yet get an `ioc_only` re-hunt by the workers.
Disabling or removing deletes the IOC's hits at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, HTTPException, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from casescope.errors import CasescopeError
from casescope.hunt.ioc import IocType
from casescope.model.enums import AuditAction
from casescope.services import ioc_hits, iocs
from casescope.web.api.models import IsoTime
from casescope.web.ids import BodyId
from casescope.web.security import CaseRead, CaseScope, CaseWrite, State, audit
from casescope.web.state import WebState

if TYPE_CHECKING:
    from casescope.store.index import EventIndex

router = APIRouter(prefix="/api/cases/{case_id}/iocs", tags=["iocs"])

#: Largest IOC file accepted by an upload (a list of a million hashes is ~70 MB).
MAX_IMPORT_BYTES = 100 * 2**20


class NewIocs(BaseModel):
    values: Annotated[list[Annotated[str, Field(max_length=4000)]], Field(min_length=1)]
    type: IocType | None = None
    note: Annotated[str, Field(max_length=iocs.MAX_NOTE_CHARS)] = ""


class IocIds(BaseModel):
    ids: Annotated[list[BodyId], Field(min_length=1, max_length=100_000)]


class IocOut(BaseModel):
    id: int
    case_id: int
    type: IocType
    value: str = Field(description="Normalised: what is matched.")
    original: str = Field(description="As entered or imported.")
    note: str
    source: str = Field(description="Where it came from (`web`, `web-import`, `cli`, ...).")
    enabled: bool
    created_at: IsoTime
    hits: int
    events: int = Field(description="Events it hit.")


class LineErrorOut(BaseModel):
    line: int = Field(description="Line number in the file (from 1).")
    text: str
    message: str


class IocChangeOut(BaseModel):
    """What an add, import, enable or disable did, and the re-hunt it queued."""

    added: list[int] = Field(description="Ids of the new (or re-enabled) IOCs.")
    changed: list[int] = Field(description="Ids enabled or disabled by this call.")
    existing: int = Field(description="Already there (or in the state asked for): unchanged.")
    duplicates: int = Field(description="Repeated within the input.")
    errors: list[LineErrorOut] = Field(description="Bad lines of an import.")
    queued: int = Field(description="Files queued for an `ioc_only` re-hunt.")
    index_hits: int | None = Field(
        description="Hits of the new IOCs found in the index (null: none hunted there)."
    )


class IocsRemovedOut(BaseModel):
    removed: int
    hits_deleted: int


def change_dict(change: iocs.IocChange) -> dict:
    return {
        "added": change.added,
        "changed": change.changed,
        "existing": change.existing,
        "duplicates": change.duplicates,
        "errors": [e.__dict__ for e in change.errors],
        "queued": change.queued,
        "index_hits": change.index_hits,
    }


def _hunted(state: WebState, change_iocs: Callable[[EventIndex], iocs.IocChange]) -> dict:
    """Run an IOC change that hunts new IOCs, with `serve`'s index to hunt them in; start
    workers if it queued files that are not in the index."""
    try:  # the hunt loads what is ready first: it takes the index alone (a writer)
        with state.index.write() as index:
            change = change_iocs(index)
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None
    if change.queued:
        state.kick_workers()
    return change_dict(change)


def actor(scope: CaseScope) -> str:
    return f"web:{scope.principal.name}"


def add(state: WebState, scope: CaseScope, body: NewIocs) -> dict:
    return _hunted(
        state,
        lambda index: iocs.add_iocs(
            state.db,
            state.settings,
            scope.case_id,
            body.values,
            body.type,
            note=body.note,
            source="web",
            actor=actor(scope),
            index=index,
        ),
    )


def import_text(state: WebState, scope: CaseScope, text: str, ioc_type: IocType | None) -> dict:
    return _hunted(
        state,
        lambda index: iocs.import_iocs(
            state.db,
            state.settings,
            scope.case_id,
            text,
            ioc_type=ioc_type,
            source="web-import",
            actor=actor(scope),
            index=index,
        ),
    )


async def read_upload(upload: UploadFile) -> str:
    data = await upload.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise HTTPException(413, f"IOC files are limited to {MAX_IMPORT_BYTES // 2**20} MB")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise HTTPException(400, "the IOC file is not UTF-8 text") from None


def set_enabled(state: WebState, scope: CaseScope, ids: list[int], enabled: bool) -> dict:
    return _hunted(
        state,
        lambda index: iocs.set_enabled(
            state.db, state.settings, scope.case_id, ids, enabled, actor=actor(scope), index=index
        ),
    )


def remove(state: WebState, scope: CaseScope, ids: list[int]) -> dict:
    try:
        hits = iocs.remove_iocs(state.db, scope.case_id, ids, actor=actor(scope))
    except CasescopeError as exc:
        raise HTTPException(400, str(exc)) from None
    return {"removed": len(set(ids)), "hits_deleted": hits}


def ioc_rows(state: WebState, case_id: int, enabled: bool | None = None) -> list[dict]:
    """The case's IOCs in id order with their hit counts."""
    counts = {s.ioc_id: s for s in ioc_hits.hit_summary(state.db, ioc_hits.HitFilter(case_id))}
    out = []
    for ioc in iocs.list_iocs(state.db, case_id, enabled=enabled):
        hit = counts.get(ioc.id)
        out.append(
            {
                **ioc.__dict__,
                "type": ioc.type.value,
                "created_at": ioc.created_at.isoformat(),
                "hits": hit.hits if hit else 0,
                "events": hit.events if hit else 0,
            }
        )
    return out


@router.get("", response_model=list[IocOut])
def list_case_iocs(scope: CaseRead, state: State, enabled: bool | None = None) -> list[IocOut]:
    """The case's IOCs in id order with their hit counts."""
    return [IocOut(**row) for row in ioc_rows(state, scope.case_id, enabled)]


@router.post("", response_model=IocChangeOut)
def add_case_iocs(body: NewIocs, scope: CaseWrite, state: State) -> IocChangeOut:
    """Add indicators (all or nothing; type inferred unless given); queues a re-hunt."""
    return IocChangeOut.model_validate(add(state, scope, body))


@router.post("/import", response_model=IocChangeOut)
async def import_case_iocs(
    file: UploadFile, scope: CaseWrite, state: State, type: IocType | None = None
) -> IocChangeOut:
    """Import a CSV (`type,value[,note]`) or a plain list; bad lines come back in `errors`."""
    text = await read_upload(file)
    audit(state, scope.principal, AuditAction.IOC_IMPORT, scope.case_id, file.filename or "")
    change = await run_in_threadpool(import_text, state, scope, text, type)
    return IocChangeOut.model_validate(change)


@router.post("/enable", response_model=IocChangeOut)
def enable_iocs(body: IocIds, scope: CaseWrite, state: State) -> IocChangeOut:
    return IocChangeOut.model_validate(set_enabled(state, scope, body.ids, True))


@router.post("/disable", response_model=IocChangeOut)
def disable_iocs(body: IocIds, scope: CaseWrite, state: State) -> IocChangeOut:
    return IocChangeOut.model_validate(set_enabled(state, scope, body.ids, False))


@router.post("/remove", response_model=IocsRemovedOut)
def remove_case_iocs(body: IocIds, scope: CaseWrite, state: State) -> IocsRemovedOut:
    """Delete IOCs and their hits (POST with a body: some clients drop DELETE bodies)."""
    return IocsRemovedOut.model_validate(remove(state, scope, body.ids))

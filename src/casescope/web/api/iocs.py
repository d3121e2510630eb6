"""IOCs of a case: list, add, import a file, enable/disable, remove (over services/iocs.py).

Adding or enabling hunts only the new IOCs, in the index `serve` owns (seconds, every other
hit untouched); files not in the index yet get an `ioc_only` re-hunt by the workers.
Disabling or removing deletes the IOC's hits at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, HTTPException, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from casescope.errors import CasescopeError
from casescope.hunt.ioc import IocType
from casescope.model.enums import AuditAction
from casescope.services import ioc_hits, iocs
from casescope.store.index import EventIndex
from casescope.web.ids import BodyId
from casescope.web.security import CaseRead, CaseScope, CaseWrite, State, audit
from casescope.web.state import WebState

router = APIRouter(prefix="/api/cases/{case_id}/iocs", tags=["iocs"])

#: Largest IOC file accepted by an upload (a list of a million hashes is ~70 MB).
MAX_IMPORT_BYTES = 100 * 2**20


class NewIocs(BaseModel):
    values: Annotated[list[Annotated[str, Field(max_length=4000)]], Field(min_length=1)]
    type: IocType | None = None
    note: Annotated[str, Field(max_length=iocs.MAX_NOTE_CHARS)] = ""


class IocIds(BaseModel):
    ids: Annotated[list[BodyId], Field(min_length=1, max_length=100_000)]


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


@router.get("")
def list_case_iocs(scope: CaseRead, state: State, enabled: bool | None = None) -> list[dict]:
    """The case's IOCs in id order with their hit counts."""
    counts = {
        s.ioc_id: s for s in ioc_hits.hit_summary(state.db, ioc_hits.HitFilter(scope.case_id))
    }
    out = []
    for ioc in iocs.list_iocs(state.db, scope.case_id, enabled=enabled):
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


@router.post("")
def add_case_iocs(body: NewIocs, scope: CaseWrite, state: State) -> dict:
    """Add indicators (all or nothing; type inferred unless given); queues a re-hunt."""
    return add(state, scope, body)


@router.post("/import")
async def import_case_iocs(
    file: UploadFile, scope: CaseWrite, state: State, type: IocType | None = None
) -> dict:
    """Import a CSV (`type,value[,note]`) or a plain list; bad lines come back in `errors`."""
    text = await read_upload(file)
    audit(state, scope.principal, AuditAction.IOC_IMPORT, scope.case_id, file.filename or "")
    return await run_in_threadpool(import_text, state, scope, text, type)


@router.post("/enable")
def enable_iocs(body: IocIds, scope: CaseWrite, state: State) -> dict:
    return set_enabled(state, scope, body.ids, True)


@router.post("/disable")
def disable_iocs(body: IocIds, scope: CaseWrite, state: State) -> dict:
    return set_enabled(state, scope, body.ids, False)


@router.post("/remove")
def remove_case_iocs(body: IocIds, scope: CaseWrite, state: State) -> dict:
    """Delete IOCs and their hits (POST with a body: some clients drop DELETE bodies)."""
    return remove(state, scope, body.ids)

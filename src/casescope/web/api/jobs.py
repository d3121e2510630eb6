"""Bulk operations of a case: list, progress, pause/resume/cancel/retry, live progress (SSE).

The event stream (docs/web.md "Jobs") sends the operation's progress as JSON whenever it
changes, each message with an `id:` that only grows: `step * 1,000,000 + n`, where the step
counts finished files and state changes. A reconnecting client's `Last-Event-ID` is honoured:
every message after it has a larger id, and a client that already saw the end gets 204 (the
browser then stops reconnecting). A comment line is sent after `sse_heartbeat_seconds` of
silence; the stream ends once the operation is terminal and nothing of it runs any more.

A user holds at most `sse_streams_per_user` streams at once on this process (429 past it):
the cap bounds this process's poll loops, so it is not shared with the other `serve`
processes behind a balancer (docs/deploy.md); the progress itself is read from the DB. At every
heartbeat interval the stream checks its request's session or token and the user's access
to the case again, and ends (after a `: access ended` comment) when either is gone.
"""

from __future__ import annotations

import re
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Annotated

import anyio
import orjson
from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse
from fastapi.sse import format_sse_event
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from casescope.errors import NotFoundError
from casescope.model.enums import OperationKind, OperationState
from casescope.services import operations as ops
from casescope.services.reprocess import retry_operation
from casescope.web.api.models import IsoTime, QueuedOut
from casescope.web.ids import PathId
from casescope.web.security import CaseRead, CaseScope, CaseWrite, State, still_authorised
from casescope.web.state import WebState

router = APIRouter(prefix="/api/cases/{case_id}/operations", tags=["jobs"])

OperationId = PathId
#: How often a stream reads the operation's progress (at most; never slower than heartbeats).
POLL_SECONDS = 1.0
#: Browsers wait this long (ms) before reconnecting a dropped stream.
RETRY_MS = 3000
#: Fields of the progress that change by themselves with time: not a reason to send.
_CLOCK_FIELDS = ("seconds", "files_per_second", "events_per_second", "eta_seconds")
#: What the event stream answers (it streams: FastAPI cannot infer it).
EVENTS_RESPONSES: dict[int | str, dict] = {
    200: {
        "description": "`progress` events: an operation's progress (JSON) whenever it changes.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    204: {"description": "`Last-Event-ID` is the end: nothing more will come."},
}


class OperationOut(BaseModel):
    """A bulk operation and its progress, computed from its jobs."""

    id: int
    case_id: int
    kind: OperationKind
    state: OperationState
    created_by: str
    detail: str
    created_at: IsoTime
    finished_at: IsoTime | None
    sealed: bool = Field(description="All its files are known: `files_total` is final.")
    files_total: int
    files_done: int
    files_failed: int
    files_cancelled: int
    files_running: int
    files_queued: int
    files_paused: int
    files_retryable: int = Field(
        description="Failed or cancelled files not processed again since: what a retry queues."
    )
    events: int
    seconds: float = Field(description="Running time, pauses left out.")
    files_per_second: float
    events_per_second: float
    eta_seconds: float | None
    step: int = Field(description="Grows when a file finishes or the state changes.")
    files_finished: int = Field(description="Done, failed or cancelled.")
    finished: bool = Field(description="Terminal, and none of its files is left to run.")
    percent: int


class ChangedOut(BaseModel):
    changed: int = Field(description="Files whose jobs the change moved.")


class OperationChangeOut(OperationOut, ChangedOut):
    """The operation after a pause, resume or cancel (`changed` first, as it always was)."""


def operation_out(progress: ops.OperationProgress) -> OperationOut:
    return OperationOut.model_validate(progress, from_attributes=True)


def operation_progress(state: WebState, case_id: int, operation_id: int) -> ops.OperationProgress:
    try:
        return ops.get_progress(state.db, operation_id, case_id)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("", response_model=list[OperationOut])
def list_operations(
    scope: CaseRead, state: State, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[OperationOut]:
    """The case's latest operations, newest first, with their progress."""
    return [operation_out(p) for p in ops.list_operations(state.db, scope.case_id, limit)]


@router.get("/{operation_id}", response_model=OperationOut)
def get_operation(operation_id: OperationId, scope: CaseRead, state: State) -> OperationOut:
    return operation_out(operation_progress(state, scope.case_id, operation_id))


def change_operation(
    state: WebState,
    scope: CaseWrite,
    operation_id: int,
    action: Callable[..., int],
) -> OperationChangeOut:
    """Apply pause/resume/cancel (audited by the service as `operation.<action>`)."""
    try:
        changed = action(state.db, operation_id, f"web:{scope.principal.name}", scope.case_id)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except ops.OperationStateError as exc:
        raise HTTPException(409, str(exc)) from None
    progress = operation_progress(state, scope.case_id, operation_id)
    return OperationChangeOut(changed=changed, **operation_out(progress).model_dump())


@router.post("/{operation_id}/pause", response_model=OperationChangeOut)
def pause(operation_id: OperationId, scope: CaseWrite, state: State) -> OperationChangeOut:
    """Stop claims of the operation's files; files already running finish."""
    return change_operation(state, scope, operation_id, ops.pause)


@router.post("/{operation_id}/resume", response_model=OperationChangeOut)
def resume(operation_id: OperationId, scope: CaseWrite, state: State) -> OperationChangeOut:
    body = change_operation(state, scope, operation_id, ops.resume)
    state.kick_workers()
    return body


@router.post("/{operation_id}/cancel", response_model=OperationChangeOut)
def cancel(operation_id: OperationId, scope: CaseWrite, state: State) -> OperationChangeOut:
    """Cancel the queued and paused files (they return to their previous outcome)."""
    return change_operation(state, scope, operation_id, ops.cancel)


def retry_failed(state: WebState, scope: CaseWrite, operation_id: int) -> QueuedOut:
    """Queue the operation's failed files again, as a new `retry` operation."""
    try:
        done = retry_operation(
            state.db,
            state.settings,
            operation_id,
            f"web:{scope.principal.name}",
            scope.case_id,
        )
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    if done.count:
        state.kick_workers()
    return QueuedOut(queued=done.count, operation_id=done.operation_id)


@router.post("/{operation_id}/retry", response_model=QueuedOut)
def retry(operation_id: OperationId, scope: CaseWrite, state: State) -> QueuedOut:
    return retry_failed(state, scope, operation_id)


#: An id this stream sends: ASCII digits that fit a 64-bit integer (`str.isdigit` also takes
#: "²" and Arabic digits, and `int` refuses more than 4,300 digits: both were 500s).
_EVENT_ID = re.compile(r"[0-9]{1,18}", re.ASCII)


def _last_event_id(value: str | None) -> int:
    if value is None or not value.strip():
        return -1
    if not _EVENT_ID.fullmatch(value.strip()):
        raise HTTPException(400, "Last-Event-ID must be an id this stream sent (an integer)")
    return int(value)


class StreamSlots:
    """The open event streams of each user. Weak references: a stream whose generator was
    dropped without running its `finally` (a request torn down early) frees its slot too."""

    def __init__(self) -> None:
        self._open: dict[int, weakref.WeakSet[ProgressStream]] = {}
        self._lock = threading.Lock()

    def take(self, user_id: int, stream: ProgressStream, limit: int) -> bool:
        with self._lock:
            held = self._open.setdefault(user_id, weakref.WeakSet())
            if len(held) >= limit:
                return False
            held.add(stream)
            return True

    def give_back(self, user_id: int, stream: ProgressStream) -> None:
        with self._lock:
            held = self._open.get(user_id)
            if held is not None:
                held.discard(stream)
                if not held:
                    del self._open[user_id]

    def count(self, user_id: int) -> int:
        with self._lock:
            return len(self._open.get(user_id, ()))


@router.get("/{operation_id}/events", response_class=StreamingResponse, responses=EVENTS_RESPONSES)
async def events(
    request: Request,
    operation_id: OperationId,
    scope: CaseRead,
    state: State,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Response:
    """Server-Sent Events: the operation's progress, live (see the module docstring)."""
    last = _last_event_id(last_event_id)
    progress = await run_in_threadpool(operation_progress, state, scope.case_id, operation_id)
    if progress.finished and last >= progress.step * ops.STEP_IDS:
        return Response(status_code=204)  # seen to the end: the browser stops reconnecting
    stream = ProgressStream(state, scope, operation_id, last)
    slots: StreamSlots = request.app.state.streams
    user_id = scope.principal.user.id
    if not slots.take(user_id, stream, state.settings.sse_streams_per_user):
        raise HTTPException(
            429,
            f"at most {state.settings.sse_streams_per_user} open event streams per user",
            headers={"Retry-After": str(RETRY_MS // 1000)},
        )
    return StreamingResponse(
        stream.held(request, progress, slots),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


class ProgressStream:
    """One client's stream: ids above `last`, heartbeats in silences, ends when finished or
    when its caller may no longer see it."""

    def __init__(self, state: WebState, scope: CaseScope, operation_id: int, last: int) -> None:
        self.state, self.scope, self.operation_id, self.last = state, scope, operation_id, last
        self.case_id = scope.case_id
        self.heartbeat = state.settings.sse_heartbeat_seconds
        self.sent: dict | None = None

    async def held(
        self, request: Request, progress: ops.OperationProgress, slots: StreamSlots
    ) -> AsyncIterator[bytes]:
        """`run`, giving the user's stream slot back however the stream ends."""
        try:
            async for message in self.run(request, progress):
                yield message
        finally:
            slots.give_back(self.scope.principal.user.id, self)

    async def _allowed(self, request: Request) -> bool:
        principal = self.scope.principal
        return await run_in_threadpool(
            still_authorised, request, self.state, principal, self.case_id
        )

    def _message(self, progress: ops.OperationProgress) -> bytes | None:
        data = progress.as_dict()
        key = {k: v for k, v in data.items() if k not in _CLOCK_FIELDS}
        if key == self.sent:
            return None
        self.sent = key
        self.last = max(self.last + 1, progress.step * ops.STEP_IDS)
        data["event_id"] = self.last
        body = orjson.dumps(data).decode()
        return format_sse_event(data_str=body, event="progress", id=str(self.last))

    async def run(self, request: Request, progress: ops.OperationProgress) -> AsyncIterator[bytes]:
        yield f"retry: {RETRY_MS}\n\n".encode()
        quiet_since = checked_at = time.monotonic()
        while True:
            if time.monotonic() - checked_at >= self.heartbeat:
                if not await self._allowed(request):
                    yield b": access ended\n\n"
                    return
                checked_at = time.monotonic()
            message = self._message(progress)
            if message is not None:
                yield message
                quiet_since = time.monotonic()
                if progress.finished:
                    return
            elif time.monotonic() - quiet_since >= self.heartbeat:
                yield b": heartbeat\n\n"
                quiet_since = time.monotonic()
            await anyio.sleep(min(POLL_SECONDS, self.heartbeat))
            if await request.is_disconnected():
                return
            try:
                progress = await run_in_threadpool(
                    ops.get_progress, self.state.db, self.operation_id, self.case_id
                )
            except NotFoundError:
                return

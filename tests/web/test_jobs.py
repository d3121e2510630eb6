"""Jobs in the web app: operations API, the Server-Sent Events protocol, roles, the page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from fastapi.testclient import TestClient

from casescope.model.enums import OperationKind
from casescope.model.users import Role
from casescope.services import operations as ops
from casescope.services.users import create_user
from tests.web.conftest import PASSWORD, Web, login


def _ops_url(web: Web, operation_id: int | None = None, tail: str = "") -> str:
    base = f"/api/cases/{web.case_id}/operations"
    return base if operation_id is None else f"{base}/{operation_id}{tail}"


def _open_operation(web: Web) -> int:
    """An operation that stays running (unsealed, no files) until the test changes it."""
    return ops.create_operation(web.app.state.web.db, web.case_id, OperationKind.REINDEX, "test")


class Stream:
    """Reads one SSE response message by message (comments are returned as such)."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines

    def next(self) -> dict:
        fields: dict = {"comments": []}
        for line in self.lines:
            if line == "":
                if set(fields) != {"comments"} or fields["comments"]:
                    return fields
                continue
            name, _, value = line.partition(":")
            if name == "":
                fields["comments"].append(value.strip())
            else:
                fields[name] = value.removeprefix(" ")
        raise StopIteration

    def next_event(self) -> dict:
        while "data" not in (message := self.next()):
            pass
        data = json.loads(message["data"])
        assert data["event_id"] == int(message["id"])  # the payload repeats the SSE id
        return data


def test_the_upload_is_one_operation_that_completed(web: Web) -> None:
    [upload] = [o for o in web.clients["reader"].get(_ops_url(web)).json() if o["kind"] == "upload"]
    assert upload["state"] == "completed" and upload["finished"] and upload["sealed"]
    assert upload["files_total"] == upload["files_finished"] >= 4 and upload["events"] > 0
    assert upload["created_by"] == "web:analyst" and upload["percent"] == 100
    assert web.clients["reader"].get(_ops_url(web, upload["id"])).json()["id"] == upload["id"]
    assert web.clients["reader"].get(_ops_url(web, 9999)).status_code == 404


def test_stream_of_a_finished_operation_and_last_event_id(web: Web) -> None:
    upload = next(o for o in web.clients["reader"].get(_ops_url(web)).json())
    client = web.clients["reader"]
    with client.stream("GET", _ops_url(web, upload["id"], "/events")) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        stream = Stream(r.iter_lines())
        assert stream.next()["retry"] == "3000"
        final = stream.next_event()
        assert final["finished"] and final["event_id"] == final["step"] * ops.STEP_IDS
        with pytest.raises(StopIteration):  # the stream ends with the operation
            stream.next()
    seen = {"Last-Event-ID": str(final["event_id"])}
    assert client.get(_ops_url(web, upload["id"], "/events"), headers=seen).status_code == 204
    earlier = {"Last-Event-ID": str(final["event_id"] - 1)}
    with client.stream("GET", _ops_url(web, upload["id"], "/events"), headers=earlier) as r:
        again = Stream(r.iter_lines()).next_event()
    assert again["event_id"] > final["event_id"] - 1 and again["finished"]
    bad = client.get(_ops_url(web, upload["id"], "/events"), headers={"Last-Event-ID": "x"})
    assert bad.status_code == 400


def test_live_stream_heartbeats_and_follows_pause_and_cancel(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web.app.state.web.settings, "sse_heartbeat_seconds", 0.2)
    operation_id = _open_operation(web)
    analyst = web.clients["analyst"]
    with web.clients["reader"].stream("GET", _ops_url(web, operation_id, "/events")) as r:
        stream = Stream(r.iter_lines())
        stream.next()  # retry:
        first = stream.next_event()
        assert first["state"] == "running" and not first["finished"]
        assert "heartbeat" in stream.next()["comments"]  # nothing changed: a comment
        assert analyst.post(_ops_url(web, operation_id, "/pause")).status_code == 200
        paused = stream.next_event()
        assert paused["state"] == "paused" and paused["event_id"] > first["event_id"]
        assert analyst.post(_ops_url(web, operation_id, "/cancel")).status_code == 200
        cancelled = stream.next_event()
        assert cancelled["state"] == "cancelled" and cancelled["finished"]
        assert cancelled["event_id"] > paused["event_id"]
    resume_after = {"Last-Event-ID": str(paused["event_id"])}
    with web.clients["reader"].stream(
        "GET", _ops_url(web, operation_id, "/events"), headers=resume_after
    ) as r:
        resumed = Stream(r.iter_lines()).next_event()
    assert resumed["event_id"] > paused["event_id"] and resumed["state"] == "cancelled"
    conflict = analyst.post(_ops_url(web, operation_id, "/resume"))
    assert conflict.status_code == 409 and "cancelled" in conflict.json()["detail"]


#: Messages (heartbeats every 0.2 s) a stream may send after losing access before the test
#: calls it endless.
AFTER_ACCESS_ENDS = 50


def _ends(stream: Stream) -> list[str]:
    """The comments the stream sends until it ends; fails if it goes on."""
    comments: list[str] = []
    for _ in range(AFTER_ACCESS_ENDS):
        try:
            comments += stream.next()["comments"]
        except StopIteration:
            return comments
    raise AssertionError(f"the stream went on after access ended: {comments[-3:]}")


@pytest.fixture
def streamer(web: Web, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """A reader of the case with a session of their own; heartbeats every 0.2 s."""
    monkeypatch.setattr(web.app.state.web.settings, "sse_heartbeat_seconds", 0.2)
    db = web.app.state.web.db
    if not any(u["username"] == "streamer" for u in web.clients["admin"].get("/api/users").json()):
        create_user(db, "streamer", PASSWORD, Role.READ_ONLY)
    assert web.clients["admin"].post(f"/api/users/streamer/cases/{web.case_id}").status_code == 200
    return login(web.app, "streamer")


def test_a_stream_ends_when_its_session_ends(web: Web, streamer: TestClient) -> None:
    """The old stream outlived the logout, for as long as the operation ran."""
    operation_id = _open_operation(web)
    with streamer.stream("GET", _ops_url(web, operation_id, "/events")) as r:
        stream = Stream(r.iter_lines())
        stream.next()  # retry:
        assert stream.next_event()["state"] == "running"
        assert streamer.post("/api/logout").status_code == 200
        assert "access ended" in _ends(stream)
    web.clients["analyst"].post(_ops_url(web, operation_id, "/cancel"))


def test_a_stream_ends_when_the_case_grant_is_revoked(web: Web, streamer: TestClient) -> None:
    operation_id = _open_operation(web)
    with streamer.stream("GET", _ops_url(web, operation_id, "/events")) as r:
        stream = Stream(r.iter_lines())
        stream.next()
        stream.next_event()
        revoked = web.clients["admin"].delete(f"/api/users/streamer/cases/{web.case_id}")
        assert revoked.status_code == 200
        assert "access ended" in _ends(stream)
    assert streamer.get(_ops_url(web, operation_id, "/events")).status_code == 403
    web.clients["analyst"].post(_ops_url(web, operation_id, "/cancel"))


def test_open_streams_per_user_are_capped(
    web: Web, streamer: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old app kept every stream a user opened (each a poll of the DB every second)."""
    monkeypatch.setattr(web.app.state.web.settings, "sse_streams_per_user", 2)
    operation_id = _open_operation(web)
    url = _ops_url(web, operation_id, "/events")
    with ExitStack() as first_two:
        opened = []  # each stream is read through one iterator, kept (dropping it closes it)
        for _ in range(2):
            r = first_two.enter_context(streamer.stream("GET", url))
            assert r.status_code == 200
            opened.append(Stream(r.iter_lines()))
            opened[-1].next()
        with streamer.stream("GET", url) as third:
            assert third.status_code == 429 and third.headers["retry-after"]
        with web.clients["reader"].stream("GET", url) as someone_else:
            assert someone_else.status_code == 200  # the cap is per user
    with streamer.stream("GET", url) as again:  # the closed streams gave their slots back
        assert again.status_code == 200
    web.clients["analyst"].post(_ops_url(web, operation_id, "/cancel"))


def test_roles_csrf_and_audit(web: Web) -> None:
    operation_id = _open_operation(web)
    pause = _ops_url(web, operation_id, "/pause")
    assert web.clients["reader"].post(pause).status_code == 403
    assert web.clients["outsider"].post(pause).status_code == 403
    assert web.clients["outsider"].get(_ops_url(web, operation_id)).status_code == 403
    assert web.anonymous.get(_ops_url(web, operation_id, "/events")).status_code == 401
    analyst = web.clients["analyst"]
    no_csrf = TestClient(web.app, base_url="https://testserver", cookies=analyst.cookies)
    assert no_csrf.post(pause).status_code == 403
    assert analyst.post(pause).json()["state"] == "paused"
    assert analyst.post(_ops_url(web, operation_id, "/resume")).json()["state"] == "running"
    assert analyst.post(_ops_url(web, operation_id, "/retry")).json()["queued"] == 0
    assert analyst.post(_ops_url(web, operation_id, "/cancel")).json()["state"] == "cancelled"
    audit = web.clients["admin"].get(f"/api/audit?case_id={web.case_id}").json()
    actions = {(a["actor"], a["action"]) for a in audit}
    for action in ("pause", "resume", "cancel"):
        assert ("web:analyst", f"operation.{action}") in actions


def test_jobs_page_shows_operations_and_controls(web: Web) -> None:
    operation_id = _open_operation(web)
    page = web.clients["analyst"].get(f"/cases/{web.case_id}/jobs")
    assert page.status_code == 200
    html = page.text
    assert '<script src="/static/jobs.js"></script>' in html and "<script>" not in html
    assert f'data-op="{operation_id}"' in html and "<progress" in html
    assert f'/cases/{web.case_id}/jobs">Jobs</a>' in html
    assert f"/jobs/{operation_id}/pause" in html
    reader_page = web.clients["reader"].get(f"/cases/{web.case_id}/jobs").text
    assert "/pause" not in reader_page
    csrf = web.clients["analyst"].headers["X-CSRF-Token"]
    form = TestClient(
        web.app, base_url="https://testserver", cookies=web.clients["analyst"].cookies
    )
    url = f"/cases/{web.case_id}/jobs/{operation_id}/pause"
    assert form.post(url, data={"csrf_token": "wrong"}).status_code == 403
    done = form.post(url, data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303
    again = form.post(f"/cases/{web.case_id}/jobs/{operation_id}/pause", data={"csrf_token": csrf})
    assert again.status_code == 200  # pausing a paused operation changes nothing
    form.post(f"/cases/{web.case_id}/jobs/{operation_id}/cancel", data={"csrf_token": csrf})
    refused = form.post(
        f"/cases/{web.case_id}/jobs/{operation_id}/resume", data={"csrf_token": csrf}
    )
    assert refused.status_code == 409 and "is cancelled" in refused.text
    assert web.clients["reader"].get("/static/jobs.js").status_code == 200


def test_system_page_warns_on_memory_and_shows_home_use(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = web.clients["reader"].get("/api/system").json()
    assert report["home_used_bytes"] > 0 and "queue" in report
    monkeypatch.setattr(web.app.state.web.settings, "memory_limit_mb", 256)  # surely above 80%
    page = web.clients["reader"].get("/system").text
    assert "memory use is above 80% of the configured limit" in page
    assert "home disk use" in page and "Files of your cases being processed" in page
    assert "<h2>Workers</h2>" in web.clients["admin"].get("/system").text

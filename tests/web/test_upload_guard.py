"""Request bodies: nobody's body is read before they are authenticated, bodies have a size
limit (with or without Content-Length), and an upload's files go however the request ends.

Some requests go through the app's ASGI interface directly (on the app's own event loop) to
see what the app reads of a body, and to make a client leave in the middle of one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tests.web.conftest import Web

LIMIT = 1024 * 1024  # the fixture's upload (~250 KB) fits
REQUEST_LIMIT = 64 * 1024
WEB_ENV = {
    "CASESCOPE_MAX_UPLOAD_BYTES": str(LIMIT),
    "CASESCOPE_MAX_REQUEST_BYTES": str(REQUEST_LIMIT),
}
BOUNDARY = "casescope-test-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
CHUNK = 64 * 1024


def multipart(files: list[tuple[str, bytes]], field: str = "files", close: bool = True) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
        for name, data in files
    ]
    return b"".join(parts) + (f"--{BOUNDARY}--\r\n".encode() if close else b"")


def chunks(body: bytes) -> list[bytes]:
    return [body[n : n + CHUNK] for n in range(0, len(body), CHUNK)]


class AsgiPost:
    """One POST straight into the app: counts the body messages the app took."""

    def __init__(self, web: Web, path: str, headers: dict[str, str], body: list[bytes]) -> None:
        self.web, self.path, self.body = web, path, body
        self.headers = {"host": "testserver", "content-type": MULTIPART, **headers}
        self.read = 0
        self.status = 0
        #: Stop sending after this many messages: the client leaves (http.disconnect).
        self.leave_after: int | None = None
        #: Files under the home's tmp/ seen while the body was still coming in.
        self.seen_in_tmp: list[Path] = []

    async def _receive(self) -> dict:
        if self.read and not self.seen_in_tmp:
            self.seen_in_tmp = list(self.web.settings.tmp_dir.glob("upload-*/*"))
        if self.read >= len(self.body) or self.read == self.leave_after:
            return {"type": "http.disconnect"}
        self.read += 1
        return {
            "type": "http.request",
            "body": self.body[self.read - 1],
            "more_body": self.read < len(self.body),
        }

    async def _send(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]

    async def _run(self) -> None:
        headers = [(k.encode(), v.encode()) for k, v in self.headers.items()]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "https",
            "path": self.path,
            "raw_path": self.path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": ("198.51.100.7", 40000),
            "server": ("testserver", 443),
            "state": {},
        }
        await self.web.app(scope, self._receive, self._send)

    def __call__(self) -> AsgiPost:
        self.web.anonymous.portal.call(self._run)  # the app's event loop
        return self


def _session(web: Web, role: str) -> dict[str, str]:
    client = web.clients[role]
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    return {"cookie": cookie, "x-csrf-token": client.headers["X-CSRF-Token"]}


def _uploads_left(web: Web) -> list[Path]:
    return list(web.settings.tmp_dir.glob("upload-*"))


def test_bodies_are_not_read_before_the_caller_is_known(web: Web) -> None:
    """The old app parsed the whole multipart body into temporary files, then said 401."""
    body = chunks(multipart([("a.evtx", b"x" * 300_000)]))
    case = web.case_id
    for headers in ({}, {"cookie": "casescope_session=forged"}, {"authorization": "Bearer cs_x"}):
        for path in (f"/api/cases/{case}/files/upload", f"/api/cases/{case}/iocs/import"):
            post = AsgiPost(web, path, headers, body)()
            assert (post.status, post.read) == (401, 0), (path, headers)
        page = AsgiPost(web, f"/cases/{case}/iocs/import", headers, body)()
        assert (page.status, page.read) == (303, 0)  # to the login page


def test_upload_takes_its_csrf_token_from_the_header_only(web: Web) -> None:
    """A cookie upload without `X-CSRF-Token` is refused before its body is read (even with
    a right `csrf_token` form field: finding it would mean reading the body)."""
    headers = _session(web, "analyst")
    token = headers.pop("x-csrf-token")
    field = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
    ).encode()
    body = chunks(field + multipart([("b.ndjson", b'{"a": 1}\n')]))
    path = f"/api/cases/{web.case_id}/files/upload"
    post = AsgiPost(web, path, headers, body)()
    assert (post.status, post.read) == (403, 0)
    reader = AsgiPost(web, path, _session(web, "reader"), body)()
    assert (reader.status, reader.read) == (403, 0)  # read-only: refused before the body


def _endless(total: int) -> Iterator[bytes]:
    disposition = 'Content-Disposition: form-data; name="files"; filename="big"'
    yield f"--{BOUNDARY}\r\n{disposition}\r\n\r\n".encode()
    for _ in range(total // CHUNK):
        yield b"y" * CHUNK


def test_bodies_over_the_limit_are_413_with_or_without_content_length(web: Web) -> None:
    analyst = web.clients["analyst"]
    url = f"/api/cases/{web.case_id}/files/upload"
    big = [("files", ("big.ndjson", b"{}\n" * (LIMIT // 3 + 10)))]
    assert analyst.post(url, files=big).status_code == 413
    chunked = analyst.post(url, content=_endless(2 * LIMIT), headers={"content-type": MULTIPART})
    assert chunked.status_code == 413  # no Content-Length: counted as it comes
    long_json = {"name": "x", "description": "y" * REQUEST_LIMIT}
    assert analyst.post("/api/cases", json=long_json).status_code == 413
    login = {"username": "x" * 50, "password": "p" * (2 * REQUEST_LIMIT)}
    assert web.anonymous.post("/api/login", json=login).status_code == 413
    assert _uploads_left(web) == []


def test_upload_files_are_removed_on_success_error_and_disconnect(web: Web) -> None:
    analyst = web.clients["analyst"]
    url = f"/api/cases/{web.case_id}/files/upload"
    ok = analyst.post(url, files=[("files", ("small.ndjson", b'{"Message": "hi"}\n'))])
    assert ok.status_code == 200 and ok.json()["queued"]
    assert _uploads_left(web) == []
    truncated = multipart([("cut.ndjson", b'{"a": 1}\n' * 1000)], close=False)
    bad = analyst.post(url, content=truncated, headers={"content-type": MULTIPART})
    assert bad.status_code == 400 and "closing boundary" in bad.json()["detail"]
    assert _uploads_left(web) == []
    assert (
        analyst.post(url, content=b"no", headers={"content-type": "text/plain"}).status_code == 400
    )
    wrong_field = multipart([("w.ndjson", b"{}\n")], field="file")
    missing = analyst.post(url, content=wrong_field, headers={"content-type": MULTIPART})
    assert missing.status_code == 400 and "no files" in missing.json()["detail"]
    body = chunks(multipart([("gone.evtx", b"z" * 500_000)]))
    post = AsgiPost(web, url, _session(web, "analyst"), body)
    post.leave_after = 3
    post()
    assert post.read == 3 and post.status == 400
    assert [p.name for p in post.seen_in_tmp] == ["gone.evtx"]  # written under the home
    assert _uploads_left(web) == []

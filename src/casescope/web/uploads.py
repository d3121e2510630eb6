"""A multipart upload written into files of a folder as it arrives (no spool, no copy).

The upload route (web/api/files.py) authenticates and checks CSRF before calling this, so a
body is only ever read for a writer of the case. Each part of the `files` field goes to its
own file in the folder, under a safe name (services/uploads.py); other form fields are read
and dropped (at most `MAX_FIELD_BYTES` each). Writes run in a worker thread, chunk by chunk,
so the event loop never waits on the disk. The caller owns the folder and removes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartState, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from casescope.errors import CasescopeError
from casescope.services.uploads import new_upload_path

UPLOAD_FIELD = b"files"
MAX_FILES = 1000
MAX_FIELD_BYTES = 64 * 1024


class UploadError(CasescopeError):
    """The body is not a usable upload (answered 400)."""


class _PartWriter:
    """The parser's callbacks: each file part of `files` into a new file of `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.paths: list[Path] = []
        self._out: BinaryIO | None = None
        self._header = b""
        self._value = b""
        self._disposition = b""
        self._field_bytes = 0

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self.close,
        }

    def _part_begin(self) -> None:
        self._disposition = b""
        self._field_bytes = 0

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        if self._header.lower() == b"content-disposition":
            self._disposition = self._value
        self._header = self._value = b""

    def _headers_finished(self) -> None:
        _kind, options = parse_options_header(self._disposition)
        filename = options.get(b"filename")
        if options.get(b"name") != UPLOAD_FIELD or filename is None:
            return
        if len(self.paths) >= MAX_FILES:
            raise UploadError(f"at most {MAX_FILES} files per upload")
        path = new_upload_path(self.folder, filename.decode("utf-8", "replace"))
        self._out = path.open("wb")
        self.paths.append(path)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._out is not None:
            self._out.write(data[start:end])
            return
        self._field_bytes += end - start
        if self._field_bytes > MAX_FIELD_BYTES:
            raise UploadError(f"a form field over {MAX_FIELD_BYTES} bytes")

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


def _boundary(request: Request) -> bytes:
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UploadError("send multipart/form-data with the files in the field `files`")
    return boundary


async def receive_files(request: Request, folder: Path) -> list[Path]:
    """Stream the request's `files` parts into `folder`; their paths, in upload order."""
    writer = _PartWriter(folder)
    parser = MultipartParser(_boundary(request), writer.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            if chunk:
                await run_in_threadpool(parser.write, chunk)
        parser.finalize()
    except FormParserError:
        raise UploadError("malformed multipart body") from None
    finally:
        writer.close()
    if parser.state != MultipartState.END:
        raise UploadError("the multipart body ended before its closing boundary")
    if not writer.paths:
        raise UploadError("no files in the upload (field `files`)")
    return writer.paths

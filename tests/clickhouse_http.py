"""A test double of the ClickHouse HTTP transport: ClickHouse's HTTP interface over chDB.

No ClickHouse server can be installed on the test machines; chDB is the ClickHouse engine
in a process, one process per data directory. This process owns one chDB data directory
and answers, on 127.0.0.1, the part of ClickHouse's HTTP interface that clickhouse-connect
(1.13) uses for casescope's calls, so that several casescope processes can share one index
the way they share a server (docs/deploy.md, "What the test suite exercises"):

- the query in the body, in the `query` URL parameter (followed by the body: an INSERT's
  data) or in a multipart form field (`form_encode_query_params`);
- `param_<name>` values bound server-side to `{name:Type}` placeholders by chDB itself
  (the escaped-text values clickhouse-connect sends, passed as chDB's `params`), `database`,
  `default_format`, and every other parameter as a query setting (SET on the engine
  connection the request runs on, restored to the engine's default for the next request);
- `INSERT … FORMAT <fmt>` followed by the data (clickhouse-connect's `insert_arrow`): the
  data goes through a temporary file, `INSERT … FROM INFILE`;
- HTTP basic auth, the X-ClickHouse-User/Key headers or `user`/`password` parameters,
  checked against one user (`--user`, `--password`): a wrong password is ClickHouse's
  `Code: 516 … AUTHENTICATION_FAILED`, HTTP 401;
- errors as ClickHouse sends them: HTTP 500 (401 for the login, 400 for a syntax error)
  with the `X-ClickHouse-Exception-Code` header and a `Code: N. DB::Exception: …` body;
- `KILL QUERY WHERE query_id LIKE '…' [SYNC]` over the requests in flight (their
  `query_id` parameter): those not yet at the engine are cancelled (code 394), SYNC waits
  for each named one to end;
- responses uncompressed (the client asks, the server need not); request bodies plain or
  gzip. Results are produced whole, then sent (a server streams them); `/ping` answers.

Each request takes an engine connection from a pool (chDB allows many connections to its
one engine; each has its own USE and SET state), so requests from several processes run
at the same time on the one engine, as on a server.

Run: `python -m tests.clickhouse_http --path DIR --user U --password P`; it prints
`listening <port>` once it answers, and stops on SIGTERM. `--hold-insert FLAG` holds one
INSERT at the server while FLAG exists (`InsertHold`: a test of a loader that dies while
the server still has its INSERT).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hmac
import logging
import os
import queue
import re
import signal
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import chdb

logger = logging.getLogger(__name__)

#: URL parameters that steer the HTTP exchange rather than the query (ClickHouse's HTTP
#: handler consumes them itself).
TRANSPORT_PARAMS = frozenset(
    {
        "query", "database", "default_format", "user", "password", "query_id", "session_id",
        "session_timeout", "session_check", "compress", "decompress", "buffer_size",
        "wait_end_of_query", "client_protocol_version", "enable_http_compression",
        "send_progress_in_http_headers", "http_headers_progress_interval_ms", "quota_key",
    }
)  # fmt: skip
#: ClickHouse's HTTP default output format.
DEFAULT_FORMAT = "TabSeparated"
AUTHENTICATION_FAILED = 516
SYNTAX_ERROR = 62
NOT_IMPLEMENTED = 48
QUERY_WAS_CANCELLED = 394
#: chDB's error text carries ClickHouse's code: "Code: 62. DB::Exception: …".
_CODE = re.compile(r"Code: (\d+)\.")
_INSERT = re.compile(rb"^\s*INSERT\s+INTO\s.*?\sFORMAT\s+(\w+)[ \t]*(\r?\n)?", re.I | re.S)
_KILL = re.compile(
    r"^\s*KILL\s+QUERY\s+WHERE\s+query_id\s+LIKE\s+'([^'\\]*)'\s*(SYNC)?\s*;?\s*$", re.I
)
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.I)
#: How far into a request an INSERT statement may reach before its data begins.
_INSERT_HEAD = 1 << 20


class ClickHouseError(Exception):
    """An error to answer as ClickHouse does: its code and its text."""

    def __init__(self, code: int, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.code = code
        self.status = status

    @classmethod
    def from_engine(cls, error: Exception) -> ClickHouseError:
        text = str(error).strip()
        match = _CODE.search(text)
        code = int(match.group(1)) if match else 1001  # STD_EXCEPTION
        if not match:
            text = f"Code: {code}. DB::Exception: {text}"
        return cls(code, text, 400 if code == SYNTAX_ERROR else 500)


@dataclass
class EngineConnection:
    """One chDB connection and the session state set on it."""

    conn: object
    database: str = ""
    settings: dict[str, str] = field(default_factory=dict)


class Engine:
    """The chDB engine of one data directory, its connections pooled."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._pool: queue.LifoQueue[EngineConnection] = queue.LifoQueue()
        self._open_lock = threading.Lock()
        first = self._open()
        defaults = first.conn.query("SELECT name, value FROM system.settings", "TabSeparated")
        self.defaults = dict(
            line.split("\t", 1) for line in defaults.bytes().decode().splitlines() if "\t" in line
        )
        self.timezone = first.conn.query("SELECT timezone()", "TSV").bytes().decode().strip()
        self._pool.put(first)

    def close(self) -> None:
        """Close the pooled connections (chDB shuts its engine down with the last)."""
        while not self._pool.empty():
            self._pool.get_nowait().conn.close()  # type: ignore[attr-defined]

    def _open(self) -> EngineConnection:
        with self._open_lock:
            return EngineConnection(chdb.connect(self._path))

    @contextmanager
    def connection(self) -> Iterator[EngineConnection]:
        try:
            handle = self._pool.get_nowait()
        except queue.Empty:
            handle = self._open()
        try:
            yield handle
        finally:
            self._pool.put(handle)

    def run(self, request: Request) -> bytes:
        """Run `request` on a pooled connection; its result's bytes."""
        with self.connection() as handle:
            try:
                self._prepare(handle, request)
                result = handle.conn.query(request.sql, request.fmt, params=request.params)
            except RuntimeError as error:  # chdb.ChdbError and the engine's own errors
                raise ClickHouseError.from_engine(error) from error
        data = result.bytes() if result is not None else b""
        return data or b""

    def _prepare(self, handle: EngineConnection, request: Request) -> None:
        """The request's database and settings on the connection; the settings of earlier
        requests it does not repeat back at the engine's defaults."""
        if request.database and request.database != handle.database:
            handle.conn.query(f"USE `{request.database}`", "TabSeparated")
            handle.database = request.database
        wanted = {
            name: value
            for name, value in request.settings.items()
            if handle.settings.get(name, self.defaults.get(name)) != value
        }
        stale = {name: self.defaults.get(name, "") for name in handle.settings}
        stale = {n: v for n, v in stale.items() if n not in request.settings}
        for name, value in (stale | wanted).items():
            if not re.fullmatch(r"\w+", name):
                raise ClickHouseError(115, f"Code: 115. DB::Exception: Unknown setting {name!r}")
            literal = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
            handle.conn.query(f"SET {name} = {literal}", "TabSeparated")
        handle.settings = {**handle.settings, **wanted}
        for name in stale:
            handle.settings.pop(name, None)


@dataclass
class Request:
    """What one HTTP request asks the engine."""

    sql: str
    fmt: str = DEFAULT_FORMAT
    database: str = ""
    params: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)


def _form_fields(content_type: str, body: bytes) -> dict[str, str]:
    """The plain fields of a multipart/form-data body."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[str(name)] = part.get_payload(decode=True).decode()
    return fields


def _insert_from_file(statement: bytes, fmt: str, data: bytes, tmp_dir: str) -> tuple[str, str]:
    """(`INSERT … FROM INFILE`, the file) for an INSERT whose data follows its statement."""
    head = statement.decode()
    head = head[: re.search(r"\sFORMAT\s+\w+\s*$", head, re.I).start()]  # type: ignore[union-attr]
    fd, path = tempfile.mkstemp(suffix=".insert", dir=tmp_dir)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return f"{head} FROM INFILE '{path}' FORMAT {fmt}", path


@dataclass
class Flight:
    """A request the server is answering, as `system.processes` lists it."""

    query_id: str
    cancelled: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)


class Flights:
    """The requests in flight; KILL QUERY cancels those not yet at the engine and, with
    SYNC, waits for every one it names to end (one already at the engine runs to its end,
    as an INSERT already writing its parts does on a server)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[int, Flight] = {}

    @contextmanager
    def flying(self, query_id: str) -> Iterator[Flight]:
        flight = Flight(query_id)
        with self._lock:
            self._flights[id(flight)] = flight
        try:
            yield flight
        finally:
            with self._lock:
                del self._flights[id(flight)]
            flight.finished.set()

    def kill(self, like: str, *, sync: bool, by: Flight) -> list[str]:
        """Cancel the flights whose query id matches the LIKE pattern; their ids."""
        pattern = re.compile(
            "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in like)
        )
        with self._lock:
            named = [
                f for f in self._flights.values() if f is not by and pattern.fullmatch(f.query_id)
            ]
        for flight in named:
            flight.cancelled.set()
        if sync:
            for flight in named:
                flight.finished.wait()
        return [flight.query_id for flight in named]


class InsertHold:
    """Fault injection (`--hold-insert FLAG`): the first INSERT that arrives while FLAG
    exists, its data received in full, waits until FLAG is removed, then runs, as a busy
    server completes an INSERT whose client has gone meanwhile, unless a KILL QUERY
    cancels it first. `FLAG.held` appears when one waits, `FLAG.done` once it has run or
    was cancelled."""

    def __init__(self, flag: Path) -> None:
        self.flag = flag
        self._taken = False
        self._lock = threading.Lock()

    def wait(self, flight: Flight) -> bool:
        """Hold this INSERT if it is the one to hold, until FLAG goes or a KILL QUERY
        cancels it; whether it was held."""
        with self._lock:
            if self._taken or not self.flag.exists():
                return False
            self._taken = True
        Path(f"{self.flag}.held").touch()
        while self.flag.exists() and not flight.cancelled.wait(0.05):
            pass
        return True

    def ran(self) -> None:
        Path(f"{self.flag}.done").touch()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: DoubleServer

    def log_message(self, format: str, *args: object) -> None:
        logger.debug(format, *args)

    def do_GET(self) -> None:
        if urlsplit(self.path).path.rstrip("/") == "/ping":
            self._answer(200, b"Ok.\n", {})
            return
        self._handle(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self._handle(body)

    def _handle(self, body: bytes) -> None:
        params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        query_id = params.get("query_id") or str(uuid.uuid4())
        temp: str | None = None
        try:
            content_type = self.headers.get("Content-Type", "")
            if content_type.startswith("multipart/form-data"):
                params |= _form_fields(content_type, body)
                body = b""
            self._login(params)
            body = self._decoded(body)
            request, temp = self._request(params, body)
            with self.server.flights.flying(query_id) as flight:
                data = self._run(request, flight, inserting=temp is not None)
        except ClickHouseError as error:
            text = f"{error} (version chdb {chdb.__version__} test double)\n".encode()
            headers = {"X-ClickHouse-Exception-Code": str(error.code)}
            self._answer(error.status, text, headers | {"X-ClickHouse-Query-Id": query_id})
            return
        finally:
            if temp:
                Path(temp).unlink()
        headers = {
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": self.server.engine.timezone,
            "X-ClickHouse-Format": request.fmt,
            "X-ClickHouse-Summary": '{"read_rows":"0","written_rows":"0"}',
        }
        self._answer(200, data, headers)

    def _run(self, request: Request, flight: Flight, *, inserting: bool) -> bytes:
        """The request's result: a KILL QUERY is the server's, the rest the engine's."""
        if kill := _KILL.match(request.sql):
            killed = self.server.flights.kill(kill.group(1), sync=bool(kill.group(2)), by=flight)
            return "".join(f"finished\t{q}\n" for q in killed).encode()
        hold = self.server.hold
        held = inserting and hold is not None and hold.wait(flight)
        try:
            if flight.cancelled.is_set():
                raise ClickHouseError(
                    QUERY_WAS_CANCELLED,
                    "Code: 394. DB::Exception: Query was cancelled. (QUERY_WAS_CANCELLED)",
                )
            return self.server.engine.run(request)
        finally:
            if held and hold is not None:
                hold.ran()

    def _login(self, params: dict[str, str]) -> None:
        user, password = params.get("user", "default"), params.get("password", "")
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        elif "X-ClickHouse-User" in self.headers:
            user = self.headers["X-ClickHouse-User"]
            password = self.headers.get("X-ClickHouse-Key", "")
        expected = self.server.credentials
        if user != expected[0] or not hmac.compare_digest(password, expected[1]):
            raise ClickHouseError(
                AUTHENTICATION_FAILED,
                f"Code: 516. DB::Exception: {user}: Authentication failed: password is "
                "incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)",
                401,
            )

    def _decoded(self, body: bytes) -> bytes:
        encoding = self.headers.get("Content-Encoding", "identity").lower()
        if encoding == "identity":
            return body
        if encoding == "gzip":
            return gzip.decompress(body)
        raise ClickHouseError(
            NOT_IMPLEMENTED,
            f"Code: 48. DB::Exception: the test double reads no {encoding} request bodies",
        )

    def _request(self, params: dict[str, str], body: bytes) -> tuple[Request, str | None]:
        """The engine request of an HTTP request (and the temporary file it uses)."""
        text = params.get("query", "").encode()
        text = text + b"\n" + body if text and body else text or body
        if not text.strip():
            raise ClickHouseError(SYNTAX_ERROR, "Code: 62. DB::Exception: Empty query", 400)
        request = Request(
            sql="",
            fmt=params.get("default_format", DEFAULT_FORMAT),
            database=params.get("database", ""),
            params={k[6:]: v for k, v in params.items() if k.startswith("param_")},
            settings={
                k: v
                for k, v in params.items()
                if k not in TRANSPORT_PARAMS and not k.startswith("param_")
            },
        )
        insert = _INSERT.match(text[:_INSERT_HEAD])
        if insert and insert.end() < len(text):
            statement = text[: insert.end()].rstrip()
            fmt = insert.group(1).decode()
            request.sql, temp = _insert_from_file(
                statement, fmt, text[insert.end() :], self.server.tmp_dir
            )
            return request, temp
        request.sql = text.decode()
        if found := _TRAILING_FORMAT.search(request.sql):
            request.fmt = found.group(1)
        return request, None

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client has gone: its loss
            logger.debug("the client left before its answer")


class DoubleServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, engine: Engine, credentials: tuple[str, str], tmp: str) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.engine = engine
        self.credentials = credentials
        self.tmp_dir = tmp
        self.hold: InsertHold | None = None
        self.flights = Flights()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", required=True, help="the chDB data directory this process owns")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--user", default="default")
    parser.add_argument("--password", default="")
    parser.add_argument("--hold-insert", type=Path, help="fault injection: InsertHold's flag")
    args = parser.parse_args(argv)
    Path(args.path).mkdir(parents=True, exist_ok=True)
    engine = Engine(args.path)
    with tempfile.TemporaryDirectory(prefix="clickhouse-http-") as tmp:
        server = DoubleServer(args.port, engine, (args.user, args.password), tmp)
        server.hold = InsertHold(args.hold_insert) if args.hold_insert else None
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
        sys.stdout.write(f"listening {server.server_address[1]}\n")
        sys.stdout.flush()
        server.serve_forever()
        server.server_close()
    engine.close()


if __name__ == "__main__":
    main()

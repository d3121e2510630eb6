"""Which event index a process uses: `CASESCOPE_INDEX_URL`, read into an `IndexTarget`.

Unset, the index is the embedded chDB under the home (one owner process, store/owner.py).
Set, it is a ClickHouse server reached through clickhouse-connect:

- `clickhouse://user:pass@host:8123/casescope` or `http://…`: HTTP (default port 8123);
- `clickhouses://…` or `https://…`: HTTPS (default port 8443), with `?ca_cert=/path.pem` for
  a private CA and `?verify=false` to skip the certificate check (tests only);
- `chdb:///absolute/path`: the same server code on clickhouse-connect's in-process chDB
  interface, the engine the test suite runs the team mode on (no server can be installed
  there); one process at a time may open a path.

The events live in the database `casescope` (every query names `casescope.events`): a URL
naming another database is refused rather than half-honoured.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qs, unquote, urlsplit

from casescope.config import Settings
from casescope.errors import IndexConfigError

SETTING = "CASESCOPE_INDEX_URL"
#: The database of the events table (kept here, not in store/events_table.py, so that every
#: command can check the URL at start without loading pyarrow).
DATABASE = "casescope"


class IndexTransport(StrEnum):
    """How a process reaches the event index."""

    EMBEDDED = "embedded"  # chDB in this process, owned under the owner lock
    HTTP = "http"  # a ClickHouse server over HTTP
    HTTPS = "https"  # a ClickHouse server over HTTPS
    CHDB = "chdb"  # clickhouse-connect's in-process chDB interface (tests)

    @property
    def is_team(self) -> bool:
        """Whether several processes may load and search at once (no owner lock)."""
        return self is not IndexTransport.EMBEDDED


_SCHEMES = {
    "clickhouse": IndexTransport.HTTP,
    "http": IndexTransport.HTTP,
    "clickhouses": IndexTransport.HTTPS,
    "https": IndexTransport.HTTPS,
    "chdb": IndexTransport.CHDB,
}
_DEFAULT_PORTS = {IndexTransport.HTTP: 8123, IndexTransport.HTTPS: 8443}
_OPTIONS = frozenset({"ca_cert", "verify"})


@dataclass(frozen=True)
class IndexTarget:
    """A parsed CASESCOPE_INDEX_URL (its password never appears in `where`)."""

    transport: IndexTransport
    host: str = ""
    port: int = 0
    username: str = "default"
    password: str = ""
    path: str = ""  # chdb: the engine's directory
    ca_cert: str | None = None
    verify: bool = True

    @property
    def where(self) -> str:
        """Where the index is, for messages, /health and `doctor` (no password)."""
        if self.transport is IndexTransport.EMBEDDED:
            return "embedded chDB in the home"
        if self.transport is IndexTransport.CHDB:
            return f"chdb://{self.path}/{DATABASE}"
        return f"{self.transport}://{self.username}@{self.host}:{self.port}/{DATABASE}"


def _fail(problem: str) -> IndexConfigError:
    return IndexConfigError(f"{SETTING}: {problem}")


def _options(query: str) -> tuple[str | None, bool]:
    """(ca_cert, verify) from the URL's query string."""
    options = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise _fail(f"unknown option {unknown[0]!r} (known: ca_cert, verify)")
    verify = options.get("verify", ["true"])[-1].lower()
    if verify not in ("true", "false", "1", "0"):
        raise _fail("verify must be true or false")
    return options.get("ca_cert", [None])[-1], verify in ("true", "1")


def _database(path: str) -> None:
    name = path.strip("/")
    if name and name != DATABASE:
        raise _fail(f"the events live in the database {DATABASE!r}, not {name!r}")


def parse_index_url(url: str | None) -> IndexTarget:
    """The index `url` names (None or empty: the embedded one); IndexConfigError if it is
    not a URL casescope can use."""
    if not url or not url.strip():
        return IndexTarget(IndexTransport.EMBEDDED)
    parts = urlsplit(url.strip())
    transport = _SCHEMES.get(parts.scheme.lower())
    if transport is None:
        known = ", ".join(f"{s}://" for s in _SCHEMES)
        raise _fail(
            f"unknown scheme {parts.scheme + '://' if parts.scheme else '(none)'}; "
            f"use one of {known}"
        )
    if transport is IndexTransport.CHDB:
        if parts.netloc or not parts.path.startswith("/") or parts.path == "/":
            raise _fail("a chdb URL names an absolute directory: chdb:///path/to/index")
        return IndexTarget(transport, path=unquote(parts.path))
    try:
        port = parts.port or _DEFAULT_PORTS[transport]
    except ValueError as error:
        raise _fail(f"bad port ({error})") from None
    if not parts.hostname:
        raise _fail("no host: clickhouse://user:pass@host:8123/casescope")
    _database(parts.path)
    ca_cert, verify = _options(parts.query)
    return IndexTarget(
        transport,
        host=parts.hostname,
        port=port,
        username=unquote(parts.username or "default"),
        password=unquote(parts.password or ""),
        ca_cert=ca_cert,
        verify=verify,
    )


def check_index_url(settings: Settings) -> IndexTarget:
    """The index CASESCOPE_INDEX_URL names, checked at a command's start: a malformed URL,
    and for a server one that cannot be reached or refuses the login, is an
    IndexConfigError naming the setting before any work is done. (A chdb URL is not
    opened here: one process at a time may hold its engine.)"""
    target = parse_index_url(settings.index_url)
    if target.transport in (IndexTransport.HTTP, IndexTransport.HTTPS):
        # clickhouse-connect and pyarrow load only in team mode, not for every command
        from casescope.store.query_bounds import QueryTimeouts
        from casescope.store.server_index import connect

        connect(target, QueryTimeouts.from_settings(settings)).close()
    return target

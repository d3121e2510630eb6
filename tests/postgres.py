"""A throwaway PostgreSQL cluster for the tests: initdb in a temporary folder, a unix socket
there (no TCP listener), stopped at the end of the session.

The server binaries come from Debian's `postgresql` package, which scripts/postgres.sh
installs when they are missing (scripts/test.sh runs it). PostgreSQL refuses to run as root:
as root the cluster runs as the `postgres` user the package creates.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

#: Where Debian puts each major version's server binaries.
DEBIAN_BINARIES = Path("/usr/lib/postgresql")
#: The port only names the socket file (`.s.PGSQL.<port>`): no TCP listener is opened.
SOCKET_PORT = 5432
#: Durability is of no use to a cluster deleted at the end of the run.
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


class PostgresUnavailable(RuntimeError):
    """No server binaries: scripts/postgres.sh installs them."""


def server_binaries() -> Path:
    versions = sorted(DEBIAN_BINARIES.glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    if not versions:
        raise PostgresUnavailable(
            f"no PostgreSQL server under {DEBIAN_BINARIES}: run scripts/postgres.sh"
        )
    return versions[-1].parent


def _run_as() -> list[str]:
    """As root, the prefix that runs a command as the `postgres` user."""
    if os.geteuid() != 0:
        return []
    pwd.getpwnam("postgres")  # KeyError: the package that creates the user is missing
    return ["runuser", "-u", "postgres", "--"]


@dataclass
class PostgresCluster:
    """One server for the session; `database()` hands each test a database of its own."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="casescope-pg-")))
    _names: count = field(default_factory=count)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def start(self) -> None:
        bin_dir = server_binaries()
        as_user = _run_as()
        if as_user:
            shutil.chown(self.root, "postgres")
        self._run([*as_user, str(bin_dir / "initdb"), "-D", str(self.data), "-A", "trust",
                   "-U", "postgres", "-E", "UTF8", "--no-sync"])  # fmt: skip
        self.resume()

    def resume(self) -> None:
        """Start the server of an initialised cluster (again, after `halt`)."""
        options = " ".join(
            [f"-k {self.root}", f"-p {SOCKET_PORT}", "-c listen_addresses=''"]
            + [f"-c {setting}" for setting in FAST_SETTINGS]
        )
        pg_ctl = str(server_binaries() / "pg_ctl")
        self._run([*_run_as(), pg_ctl, "-D", str(self.data), "-o", options,
                   "-l", str(self.root / "server.log"), "-w", "start"])  # fmt: skip

    def halt(self) -> None:
        """Stop the server as an administrator would (`-m fast`: every session is ended),
        keeping its data for `resume`."""
        pg_ctl = str(server_binaries() / "pg_ctl")
        self._run([*_run_as(), pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def stop(self) -> None:
        bin_dir = server_binaries()
        pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
        subprocess.run([*_run_as(), *pg_ctl], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of `database` on this cluster (psycopg 3, over the socket)."""
        return f"postgresql+psycopg://postgres@/{database}?host={self.root}&port={SOCKET_PORT}"

    def database(self) -> str:
        """A new, empty database; its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        dsn = f"host={self.root} port={SOCKET_PORT} user=postgres dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _run(self, command: list[str]) -> None:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PostgresUnavailable(f"{command[-1]} failed: {done.stderr.strip()[-2000:]}")

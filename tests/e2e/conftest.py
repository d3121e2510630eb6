"""Run the real `casescope` command in a fresh home."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from casescope.cli import common as cli_common
from casescope.cli.app import app
from casescope.config import Settings
from casescope.model.db import Database

#: The terminal width of every command a test runs, in its own process or in the test's.
INVOKE_COLUMNS = 200


@dataclass
class Cli:
    home: Path
    #: Settings of this test's commands (CASESCOPE_* variables).
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            CASESCOPE_HOME=str(self.home),
            CASESCOPE_WORKERS="2",
            CASESCOPE_HEARTBEAT_SECONDS="0.5",
            CASESCOPE_LEASE_SECONDS="4",
            COLUMNS=str(INVOKE_COLUMNS),
        )
        env.update(self.extra)
        return env

    def run(
        self, *args: str, check: bool = True, timeout: float = 300, input: str | None = None
    ) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, "-m", "casescope", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"casescope {args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def invoke(self, *args: str) -> subprocess.CompletedProcess:
        """The command in this process (Typer's CliRunner), with this home's settings, where
        the process is not the point: what a command says to bad input, or a read of what
        other commands made (a real `run` costs a Python start-up and casescope's imports,
        about a CPU-second). An exception the command lets out is in `stderr` with its
        traceback, as a real run prints it."""
        env = {name: value for name, value in self.env.items() if name.startswith("CASESCOPE_")}
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        # the consoles took their width when this process first imported them: as `run`'s
        consoles = [(c, c._width) for c in (cli_common.console, cli_common.err_console)]
        for console, _ in consoles:
            console.width = INVOKE_COLUMNS
        try:
            result = CliRunner().invoke(
                app, list(args), env={**env, "COLUMNS": str(INVOKE_COLUMNS)}
            )
        finally:  # a command sets up logging for its process (to its home's log): undo it
            for handler in root.handlers:
                if handler not in handlers:
                    handler.close()
            root.handlers[:] = handlers
            root.setLevel(level)
            for console, width in consoles:
                console._width = width
        stderr = result.stderr
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            stderr += "".join(traceback.format_exception(result.exception))
        return subprocess.CompletedProcess(args, result.exit_code, result.stdout, stderr)

    def worker(self, **env: str) -> subprocess.CompletedProcess:
        """Run one `casescope worker --exit-when-idle` with extra settings, to completion."""
        return subprocess.run(
            [sys.executable, "-m", "casescope", "worker", "--workers", "1", "--exit-when-idle"],
            env={**self.env, **env},
            check=True,
            timeout=240,
            capture_output=True,
            text=True,
        )

    def popen(self, *args: str, own_session: bool = False) -> subprocess.Popen:
        """The command in the background (stderr kept for the test, stdout dropped);
        `own_session`: in a process group of its own, as a shell runs a job."""
        return subprocess.Popen(
            [sys.executable, "-m", "casescope", *args],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=own_session,
        )

    def db(self) -> Database:
        return Database(Settings(home=self.home))


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


class SharedHome:
    """A home a module builds once (an ingest takes seconds; copying its result takes a
    fraction of one) and hands to each test as it was built.

    `fresh()` puts the home back from a copy taken by `seal()`, at the same path: its rows
    and its event index name segments and evidence by absolute path. The tests of a module run
    one after another in one process, so one home at a time is in use."""

    def __init__(self, cli: Cli) -> None:
        self.cli = cli
        self.pristine = cli.home.with_name(f"{cli.home.name}.pristine")
        self.handed_out = False

    def seal(self) -> SharedHome:
        """Keep the home as it is now (no command may be running in it)."""
        shutil.copytree(self.cli.home, self.pristine, symlinks=True)
        return self

    def fresh(self) -> Cli:
        """The home as sealed, for a test that may change it."""
        if self.handed_out:  # the test before may have changed it
            shutil.rmtree(self.cli.home)
            shutil.copytree(self.pristine, self.cli.home, symlinks=True)
        self.handed_out = True
        return Cli(self.cli.home, dict(self.cli.extra))

"""Starting a worker pool process, in a module that imports nothing heavy: `ingest` starts
its pool before it imports the rest of its modules (`cli/ingest.py`), so the pool's and its
workers' template's start-up (about two seconds of CPU) runs beside the command's own imports,
opening of the metadata DB and intake instead of after them (`bench/ingest.py`, its timeline).

A pool runs `python -P -m casescope.jobs.pool_main` from the home directory: `-P` keeps the
working directory off `sys.path` (with plain `-m` a `glob.py` in the folder the analyst ran
`ingest` from, an evidence folder, was imported by the pool and every worker), and the pool
passes `PYTHONSAFEPATH` on to the workers it spawns. Its settings travel in its environment,
its stderr goes to `logs/pool-stderr.log`.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from casescope.config import Settings

logger = logging.getLogger(__name__)

#: Lines of the pool's stderr kept in the error shown to the user.
STDERR_LINES = 15
POOL_STDERR = "pool-stderr.log"
#: How long a pool started before its first file is queued waits for one (`--await-work`):
#: past that it exits as an idle pool does, and the command starts another if it needs one.
AWAIT_WORK_SECONDS = 60.0


def pool_command(workers: int | None = None, await_work: float | None = None) -> list[str]:
    # `casescope worker` without the CLI's imports, its template started first (pool_main.py)
    command = [sys.executable, "-P", "-m", "casescope.jobs.pool_main", "--exit-when-idle"]
    if workers:
        command += ["--workers", str(workers)]
    if await_work is not None:
        command += ["--await-work", str(await_work)]
    return command


def _env_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def pool_environment(settings: Settings) -> dict[str, str]:
    """This process's environment with its settings made explicit: the pool runs from another
    directory (a relative `CASESCOPE_HOME` must not change meaning) and must see the settings
    its starter was given, however they were given."""
    env = dict(os.environ)
    for name in settings.model_fields_set:
        value = getattr(settings, name)
        key = f"CASESCOPE_{name.upper()}"
        if value is None:
            env.pop(key, None)
        else:
            env[key] = _env_value(value)
    env["CASESCOPE_HOME"] = str(settings.home_dir)
    env["PYTHONSAFEPATH"] = "1"
    return env


def pool_stderr_path(settings: Settings) -> Path:
    return settings.home_dir / "logs" / POOL_STDERR


@dataclass
class StartedPool:
    """A pool this process started: its process, when, and where its stderr begins."""

    process: subprocess.Popen
    started: float  # time.monotonic()
    stderr_path: Path
    stderr_offset: int

    def stderr_tail(self, lines: int = STDERR_LINES) -> str:
        """What the pool wrote on stderr (only this pool's part of the shared file)."""
        try:
            with self.stderr_path.open("rb") as f:
                f.seek(self.stderr_offset)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def end(self, timeout: float = 10) -> None:
        """Stop the pool now (SIGTERM: its workers finish nothing they hold, their jobs go
        back to the queue), killing it if it does not go within `timeout`."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_pool(
    settings: Settings,
    *,
    workers: int | None = None,
    detach: bool = False,
    await_work: float | None = None,
) -> StartedPool:
    """Start a pool (`casescope worker --exit-when-idle`, as `jobs.pool_main`) from the
    home directory. `await_work`: seconds it waits for a first queued file (a pool started
    before intake has queued any) before it exits as idle."""
    command = pool_command(workers, await_work)
    stderr_path = pool_stderr_path(settings)
    stderr_path.parent.mkdir(parents=True, exist_ok=True)
    logger.info("starting a worker pool: %s", " ".join(command))
    with stderr_path.open("ab") as stderr:
        offset = stderr.tell()
        process = subprocess.Popen(
            command,
            cwd=settings.home_dir,
            env=pool_environment(settings),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=detach,
        )
    return StartedPool(process, time.monotonic(), stderr_path, offset)

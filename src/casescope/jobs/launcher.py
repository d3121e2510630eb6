"""Start a worker pool in the background when none is running (used by `ingest` and `serve`)."""

from __future__ import annotations

import logging
import subprocess
import sys

from casescope.config import Settings
from casescope.jobs.registry import live_workers
from casescope.model.db import Database

logger = logging.getLogger(__name__)


def ensure_workers(
    settings: Settings, db: Database, *, workers: int | None = None, detach: bool = False
) -> subprocess.Popen | None:
    """Start `casescope worker --exit-when-idle` unless live workers exist; returns it."""
    if live_workers(db, stale_after=settings.heartbeat_seconds * 3):
        return None
    command = [sys.executable, "-m", "casescope", "worker", "--exit-when-idle"]
    if workers:
        command += ["--workers", str(workers)]
    logger.info("starting a worker pool: %s", " ".join(command))
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=detach,
    )

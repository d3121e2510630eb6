"""Logging for every casescope process: a log file in the home, errors on stderr."""

from __future__ import annotations

import logging
import sys

from casescope.config import Settings

FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"


def setup_logging(settings: Settings, role: str, *, verbose: bool = False) -> None:
    log_dir = settings.home_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    file_handler = logging.FileHandler(log_dir / "casescope.log", encoding="utf-8")
    file_handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(file_handler)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.INFO if verbose else logging.ERROR)
    stderr.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(stderr)
    logging.getLogger(__name__).debug("logging started for %s", role)

"""`python -m casescope.jobs.pool_main [--workers N] [--exit-when-idle]`: the worker pool
that `ingest`, `reindex` and `serve` start (`jobs/launcher.py`). It is `casescope worker`
without the CLI around it, and it starts the workers' template first.

A pool's first worker waits for the template (the forkserver that imports the workers'
modules, about a second of CPU), and `casescope worker` started it only after importing the
CLI and the pool (another second): one after the other, ~2.5 s before the first claim.
Here the template starts as soon as the home is known, and the pool's own imports run
beside it (`bench/ingest.py` prints the timeline).
"""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from casescope.config import get_settings
from casescope.errors import CasescopeError
from casescope.jobs.template_start import leave_start_directory, start_template, worker_context


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="casescope.jobs.pool_main", description=__doc__)
    parser.add_argument("--workers", type=int, default=None, help="worker processes")
    parser.add_argument("--exit-when-idle", action="store_true", help="stop once drained")
    parser.add_argument(
        "--await-work",
        type=float,
        default=None,
        metavar="SECONDS",
        help="started ahead of its work: wait this long for a first queued file",
    )
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.await_work is not None and args.await_work < 0:
        parser.error("--await-work must not be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        settings = get_settings()
        leave_start_directory(settings.home_dir)
        start_template(worker_context())
        # the pool itself (SQLAlchemy, the models, the queue) loads while the template does
        from casescope.jobs.pool import run_pool

        run_pool(
            settings,
            args.workers,
            exit_when_idle=args.exit_when_idle,
            await_work=args.await_work,
        )
    except (CasescopeError, ValidationError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

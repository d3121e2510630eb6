"""The workers' template (multiprocessing's forkserver) and how a pool starts it, in a module
that imports nothing heavy: the pool started by `ingest` starts the template before it
imports its own modules (`jobs/pool_main.py`), so the template's imports (about a second
of CPU) run beside the pool's instead of after them (`bench/ingest.py`, its timeline).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from multiprocessing import forkserver
from multiprocessing.context import BaseContext
from pathlib import Path

#: What a worker needs before its first file, imported once by the template (the forkserver)
#: that every worker is forked from: the models and SQLAlchemy, the parsers and pyarrow, the
#: Sigma compiler and pySigma. Not polars, nor the modules that import it (the Sigma engine,
#: the IOC matcher): polars starts a thread as it is imported, and a process with threads
#: must not be forked; each worker imports those itself (about 0.15 s of CPU, against 1.2 s
#: for all). tests/unit/test_worker_modules.py keeps the list complete.
WORKER_MODULES = (
    "casescope.config",
    "casescope.logs",
    "casescope.allocators",
    "casescope.collector",
    "casescope.model.db",
    "casescope.model.tables",
    "casescope.workqueue.queue",
    "casescope.jobs.registry",
    "casescope.jobs.steps",
    "casescope.jobs.case_iocs",
    "casescope.evidence.store",
    "casescope.parse.files",
    "casescope.parse.sniff",
    "casescope.parse.evtx",
    "casescope.parse.ndjson",
    "casescope.parse.csvlog",
    "casescope.detect.compile",
    "casescope.detect.load",
    "casescope.detect.pipelines",
    "casescope.detect.program",
    "casescope.detect.rules",
    "casescope.detect.search",
    "casescope.hunt.ioc",
    "casescope.store.segments",
    "casescope.store.load_queue",
    "ahocorasick",
    "sqlite3",
    # pyarrow imports pandas (a dependency of chDB) with these on its first `pa.array` of a
    # Python list, which every parse makes: a third of a second of each worker's first file
    "pandas",
    "pyarrow.pandas_compat",
    "pyarrow.vendored.version",
    "casescope.jobs.pool",  # each worker's entry point (`pool._child_entry`)
    "casescope.jobs.template",  # last: ties the template's life to the pool's
)
#: The template's environment, under which numpy (OpenBLAS) and pyarrow (jemalloc) start no
#: thread as they are imported. Workers inherit it: they run no BLAS, and allocate Arrow
#: memory with the C library (`allocators.use_system_arrow_pool`).
TEMPLATE_ENVIRONMENT = {
    "OPENBLAS_NUM_THREADS": "1",
    "JE_ARROW_MALLOC_CONF": "background_thread:false",
}
#: The pool's pid, in the environment of the template it starts (`jobs/template.py`).
POOL_PID_VARIABLE = "_CASESCOPE_POOL_PID"
_PR_SET_PDEATHSIG = 1  # prctl's option (linux/prctl.h)


def worker_context() -> BaseContext:
    """How the pool starts workers: on Linux, forked from a forkserver that imported
    `WORKER_MODULES` under `TEMPLATE_ENVIRONMENT` (set in this process, which the forkserver
    inherits); elsewhere a fresh interpreter each (and no death signal: `_die_with_pool`)."""
    if sys.platform != "linux":
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(WORKER_MODULES))
    os.environ.update(TEMPLATE_ENVIRONMENT)
    os.environ[POOL_PID_VARIABLE] = str(os.getpid())
    return ctx


def set_death_signal() -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux only)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def leave_start_directory(home: Path) -> None:
    """Run from `home` with no path from the start directory on `sys.path` (evidence folders
    are attacker-controlled: a `glob.py` there must never be imported)."""
    start = Path.cwd()
    os.chdir(home)
    os.environ["PYTHONSAFEPATH"] = "1"
    package_root = Path(__file__).resolve().parents[2]  # where casescope itself is imported from
    sys.path[:] = [
        entry
        for entry in sys.path
        if entry and (Path(entry).resolve() != start or Path(entry).resolve() == package_root)
    ]


def start_template(ctx: BaseContext) -> None:
    """Start the template now (a no-op when workers are spawned, or it runs already): a
    worker forked later waits only for what is left of its imports."""
    if ctx.get_start_method() == "forkserver":
        forkserver.ensure_running()

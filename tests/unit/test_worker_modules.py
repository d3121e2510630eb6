"""The modules the workers' template imports: nearly all a worker needs, and nothing that
starts a thread (a process is forked from it for every worker).

Each check runs in a fresh interpreter, as the template does: `python -P -c`, with the
template's environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from casescope.jobs.template_start import TEMPLATE_ENVIRONMENT, WORKER_MODULES

#: Imported by a worker after the fork, on purpose: polars starts a thread as it is imported.
IMPORTED_AFTER_THE_FORK = {"polars", "_polars_runtime_32", "_polars_runtime_64"}

PROBE = """
import json, os, sys
modules = json.loads(sys.argv[1])
for name in modules:
    __import__(name)
threads = [open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task")]
before = set(sys.modules)
import casescope.jobs.worker
from pathlib import Path
from casescope.parse.evtx import iter_evtx
from casescope.parse.report import ParseReport
list(iter_evtx(Path(sys.argv[2]), ParseReport(), 1000))  # what a first file imports on the way
after = sorted({m.split(".")[0] for m in set(sys.modules) - before})
print(json.dumps({"threads": threads, "polars": "polars" in before, "after": after}))
"""


def _probe(modules: tuple[str, ...], sample: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-P", "-c", PROBE, json.dumps(modules), str(sample)],
        env={**os.environ, **TEMPLATE_ENVIRONMENT},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(proc.stdout)


def test_the_template_imports_start_no_thread_and_leave_little_to_a_worker(
    attack_samples: Path,
) -> None:
    found = _probe(WORKER_MODULES, min(attack_samples.rglob("*.evtx")))

    assert found["threads"] == ["python"]  # only the main thread
    assert not found["polars"]
    # what a worker still imports itself, up to its first file parsed: casescope's modules
    # that use polars, polars, and standard modules; a new dependency of the worker (or one
    # that a library imports on first use, as pyarrow does pandas) belongs in WORKER_MODULES
    own = {"casescope", "__mp_main__"}  # the latter: multiprocessing's alias of __main__
    third_party = set(found["after"]) - own - set(sys.stdlib_module_names)
    assert third_party <= IMPORTED_AFTER_THE_FORK, third_party

"""Imported last by the workers' template, the forkserver that a pool starts
(`template_start.WORKER_MODULES`), to tie the template to that pool: on Linux the kernel
kills it the moment the pool dies, and so each worker at once after it (a worker's death
signal follows its parent, the template: `pool._die_with_pool`).

Without it the template would still exit once its pipe from the pool closes, but only after
finalising an interpreter that holds every worker module (seconds on a loaded machine), while
its workers went on claiming the files that the pool's keeper had just released to others.

It acts only in the process whose parent is the pool named by `POOL_PID_VARIABLE` (set by the
pool before it starts the template): importing it anywhere else does nothing.
"""

from __future__ import annotations

import os

from casescope.jobs.template_start import POOL_PID_VARIABLE, set_death_signal

if os.environ.get(POOL_PID_VARIABLE) == str(os.getppid()):
    set_death_signal()

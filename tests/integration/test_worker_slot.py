"""The memory a worker shares with its pool: what file it is on, and whether it still runs.

The pool's bounds read it, not the database, so that a native call that holds the GIL (and
starves the heartbeat thread) cannot hide a stuck worker, while a worker merely busy in
Python code keeps pulsing.
"""

from __future__ import annotations

import multiprocessing
import re
import time

from casescope.config import Settings
from casescope.jobs.pool import PULSE_SECONDS, WorkerSlot, stall_seconds
from casescope.jobs.worker import PolicedContext, Pulse
from casescope.model.enums import Operation
from casescope.workqueue.queue import ClaimedJob

SPAWN = multiprocessing.get_context("spawn")


def test_the_jobs_held_and_the_current_one_are_published_by_the_context(tmp_path) -> None:
    slot = WorkerSlot(SPAWN)
    assert slot.current() is None and not slot.holds_jobs()
    ctx = PolicedContext(settings=Settings(home=tmp_path), db=None, worker_id="w")  # type: ignore[arg-type]
    ctx.slot = slot
    ctx.claimed = [ClaimedJob(7, 42, Operation.FULL, 1), ClaimedJob(8, 43, Operation.FULL, 1)]
    assert slot.holds_jobs() and len(ctx.claimed) == 2
    before = time.monotonic()
    ctx.current = ClaimedJob(7, 42, Operation.FULL, 1)
    current = slot.current()
    assert current is not None and (current.job_id, current.file_id) == (7, 42)
    assert before <= current.started <= time.monotonic()
    assert ctx.current == ClaimedJob(7, 42, Operation.FULL, 1)
    ctx.current = None
    assert slot.current() is None and ctx.current is None
    ctx.claimed = []
    assert not slot.holds_jobs()


def test_a_worker_busy_in_python_keeps_pulsing() -> None:
    slot = WorkerSlot(SPAWN)
    pulse = Pulse(slot)
    pulse.start()
    deadline, loudest = time.monotonic() + 3 * PULSE_SECONDS, 0.0
    n = 0
    while time.monotonic() < deadline:  # pure Python: the GIL changes hands every 5 ms
        n = (n * 31 + 7) % 1_000_003
        loudest = max(loudest, slot.silent_for(time.monotonic()))
    assert loudest < 2 * PULSE_SECONDS
    pulse.stop()
    assert slot.silent_for(time.monotonic()) == 0.0  # leaving: no stall bound any more


def _stuck_in_a_native_call(slot: WorkerSlot) -> None:
    Pulse(slot).start()
    time.sleep(2 * PULSE_SECONDS)
    re.match(r"(a+)+$", "a" * 40 + "b")  # backtracks for ages without releasing the GIL


def test_a_native_call_holding_the_gil_silences_the_worker() -> None:
    slot = WorkerSlot(SPAWN)
    child = SPAWN.Process(target=_stuck_in_a_native_call, args=(slot,), daemon=True)
    child.start()
    try:
        deadline = time.monotonic() + 60
        while slot.silent_for(time.monotonic()) <= 3 * PULSE_SECONDS:
            assert time.monotonic() < deadline, "the pulse never stopped"
            assert child.is_alive()
            time.sleep(0.1)
    finally:
        child.kill()
        child.join(5)


def test_the_stall_bound_is_half_the_lease_and_at_least_5_s(tmp_path) -> None:
    assert stall_seconds(Settings(home=tmp_path)) == 30  # default lease 60 s
    assert stall_seconds(Settings(home=tmp_path, lease_seconds=4)) == 5

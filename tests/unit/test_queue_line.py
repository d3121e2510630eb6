"""`casescope status`'s queue line: the jobs in the queue first, in the order they move
(queued, running, paused), then the finished ones."""

from __future__ import annotations

from casescope.cli.status import _queue_line


def test_waiting_jobs_first_then_the_finished_ones() -> None:
    jobs = {"done": 5, "paused": 2, "queued": 3, "failed": 1, "running": 1}
    assert _queue_line(jobs) == "3 queued, 1 running, 2 paused (jobs finished: done 5, failed 1)"


def test_an_empty_queue() -> None:
    assert _queue_line({}) == "empty"
    assert _queue_line({"cancelled": 4}) == "empty (jobs finished: cancelled 4)"

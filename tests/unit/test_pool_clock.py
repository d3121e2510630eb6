"""`PausedTime`: the spans in which the worker pool did not run, taken off its workers'
silence and file time."""

from __future__ import annotations

from casescope.jobs.pool_clock import LATE_SECONDS, PausedTime


def test_rounds_on_time_leave_nothing_to_excuse() -> None:
    paused = PausedTime(keep_seconds=100)
    for n in range(10):
        assert paused.round(n * 0.25, 0.25) == 0.0
    assert paused.round(2.5 + LATE_SECONDS, 0.25) == 0.0  # late, but within the slack
    assert paused.within(0.0, 10.0) == 0.0


def test_a_late_round_is_a_span_taken_off_what_overlaps_it() -> None:
    paused = PausedTime(keep_seconds=100)
    paused.round(10.0, 0.25)
    assert paused.round(40.25, 0.25) == 30.0  # due at 10.25: stopped from then to 40.25
    assert paused.within(0.0, 41.0) == 30.0  # silent since before the stop
    assert paused.within(20.25, 41.0) == 20.0  # a file started during it
    assert paused.within(40.25, 41.0) == 0.0  # pulsed after it
    paused.round(40.5, 0.25)
    assert paused.round(50.75, 0.25) == 10.0
    assert paused.within(0.0, 51.0) == 40.0


def test_spans_older_than_any_bound_are_forgotten() -> None:
    paused = PausedTime(keep_seconds=20)
    paused.round(0.0, 0.25)
    paused.round(10.25, 0.25)  # a 10 s span
    paused.round(100.0, 0.25)  # and a later one: the first is past keeping
    assert paused.within(0.0, 101.0) == 100.0 - 10.5

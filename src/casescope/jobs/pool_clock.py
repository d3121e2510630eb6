"""Time the worker pool itself did not run, which its workers' bounds do not count.

`Ctrl-Z` on `casescope ingest` stops the whole process group (the pool and its workers
with it); `fg` a minute later resumes them. A worker's silence and its file's time were
measured across the stop as if the worker had hung, so every worker was killed as
stalled and its file blamed. The pool's own rounds tell: one that comes much later than
due means the pool did not run meanwhile (stopped, or starved of CPU as its workers were),
and that span is taken off the silence and the file time of every worker.
"""

from __future__ import annotations

#: A round later than this past its due time means the pool did not run meanwhile.
LATE_SECONDS = 2.0


class PausedTime:
    """The spans (start, end), in `time.monotonic()`, in which the pool did not run."""

    def __init__(self, keep_seconds: float) -> None:
        self._keep = keep_seconds  # older spans can no longer matter to any bound
        self._last: float | None = None
        self._spans: list[tuple[float, float]] = []

    def round(self, now: float, interval: float) -> float:
        """Note a supervision round at `now` (rounds are `interval` apart); the seconds
        the pool did not run since the last round, 0 when it came on time."""
        last, self._last = self._last, now
        if last is None or now - (last + interval) <= LATE_SECONDS:
            return 0.0
        self._spans = [(a, b) for a, b in self._spans if b > now - self._keep]
        self._spans.append((last + interval, now))
        return now - (last + interval)

    def within(self, since: float, now: float) -> float:
        """Seconds of [since, now] in which the pool did not run."""
        return sum(max(0.0, min(end, now) - max(start, since)) for start, end in self._spans)

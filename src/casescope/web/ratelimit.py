"""Login rate limit: failed attempts per (user name, client) in a sliding minute."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

WINDOW_SECONDS = 60.0


class LoginLimiter:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures[key]
        while times and times[0] < now - WINDOW_SECONDS:
            times.popleft()
        return times

    def blocked(self, username: str, client: str) -> bool:
        with self._lock:
            now = time.monotonic()
            return len(self._recent((username.lower(), client), now)) >= self.per_minute or (
                len(self._recent(("*", client), now)) >= self.per_minute * 4
            )

    def failed(self, username: str, client: str) -> None:
        with self._lock:
            now = time.monotonic()
            self._failures[(username.lower(), client)].append(now)
            self._failures[("*", client)].append(now)

    def succeeded(self, username: str, client: str) -> None:
        with self._lock:
            self._failures.pop((username.lower(), client), None)

"""The login rate limit's tables: bounded whatever the names, and back-off, not lockout."""

from __future__ import annotations

import secrets
import tracemalloc
from contextlib import ExitStack

import pytest

from casescope.web.ratelimit import (
    CLIENT_MAX_DELAY,
    FORGET_SECONDS,
    MAX_KEYS,
    USER_MAX_DELAY,
    VERIFY_AT_ONCE,
    LoginBusy,
    LoginLimiter,
)

#: What 10,000 keys in each of the three tables may take, with room to spare (measured ~5 MB).
MEMORY_BOUND = 16 * 2**20


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_memory_stays_bounded_under_100k_random_names_and_clients() -> None:
    """The old table kept every (name, client) that ever failed: ~100 MB for this flood."""
    limiter = LoginLimiter(5)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(100_000):
            limiter.failed(secrets.token_hex(8), f"10.{secrets.randbelow(2**16)}.0.1")
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < MEMORY_BOUND


def test_tables_keep_at_most_max_keys_and_forget_old_failures() -> None:
    clock = Clock()
    limiter = LoginLimiter(5, clock=clock)
    for n in range(MAX_KEYS + 500):
        limiter.failed(f"user{n}", f"client{n}")
    assert len(limiter) == 3 * MAX_KEYS
    clock.now += FORGET_SECONDS + 1
    limiter.failed("late", "client")
    assert len(limiter) == 3  # the stale keys went with the next failure


def test_refused_attempts_store_nothing() -> None:
    clock = Clock()
    limiter = LoginLimiter(1, clock=clock)
    limiter.failed("x", "c")
    held = len(limiter)
    assert limiter.retry_after("x", "c") > 0
    for n in range(1000):
        limiter.retry_after(f"name{n}", f"client{n}")
    assert len(limiter) == held


def test_back_off_doubles_per_pair_and_is_capped_per_user() -> None:
    clock = Clock()
    limiter = LoginLimiter(2, clock=clock)
    waits = []
    for _ in range(12):
        wait = limiter.retry_after("alice", "attacker")
        waits.append(wait)
        clock.now += wait
        limiter.failed("alice", "attacker")
    assert waits[:3] == [0, 0, 1] and waits[3:6] == [2, 4, 8]
    assert max(waits) == CLIENT_MAX_DELAY
    # alice from elsewhere waits only for the user's own, short back-off
    assert 0 < limiter.retry_after("alice", "alice's laptop") <= USER_MAX_DELAY
    clock.now += USER_MAX_DELAY
    assert limiter.retry_after("alice", "alice's laptop") == 0
    assert limiter.retry_after("alice", "attacker") > 0  # the attacker still waits


def test_success_clears_the_user_but_not_the_client() -> None:
    clock = Clock()
    limiter = LoginLimiter(1, clock=clock)
    for n in range(10):
        clock.now += limiter.retry_after(f"name{n}", "sprayer")
        limiter.failed(f"name{n}", "sprayer")
    limiter.succeeded("name9", "sprayer")
    assert limiter.retry_after("name9", "other client") == 0
    assert limiter.retry_after("someone", "sprayer") > 0  # spraying names still backs off


def test_password_checks_take_turns() -> None:
    """Each argon2 check takes 64 MiB: parallel logins must not each get one at once."""
    limiter = LoginLimiter(5)
    with ExitStack() as held:
        for _ in range(VERIFY_AT_ONCE):
            held.enter_context(limiter.verifying())
        with pytest.raises(LoginBusy), limiter.verifying():
            pass
    with limiter.verifying():  # the turns came back
        pass

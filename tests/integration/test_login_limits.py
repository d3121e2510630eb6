"""The login rate limit's counts in the metadata DB (SQLite and PostgreSQL): bounded whatever
the names, back-off and not lockout, and shared by every limiter on the database (each
`serve` process behind a load balancer has its own)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest

from casescope.model.db import Database
from casescope.web.ratelimit import (
    CLIENT_MAX_DELAY,
    FORGET_SECONDS,
    USER_MAX_DELAY,
    VERIFY_AT_ONCE,
    LoginBusy,
    LoginLimiter,
)
from tests.integration.conftest import BOTH_DATABASES

pytestmark = BOTH_DATABASES
#: Keys per kind in these tests (the real bound, 10,000, only takes longer to reach).
SMALL_MAX_KEYS = 40


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_tables_keep_at_most_max_keys_and_forget_old_failures(db: Database) -> None:
    clock = Clock()
    limiter = LoginLimiter(db, 1, clock=clock, max_keys=SMALL_MAX_KEYS)
    last = SMALL_MAX_KEYS + 14
    for n in range(last + 1):
        clock.now += 0.001
        limiter.failed(f"user{n}", f"client{n}")
    assert len(limiter) == 3 * SMALL_MAX_KEYS
    # the least recently failed went first; the latest still back off
    assert limiter.retry_after("user0", "client0") == 0
    assert limiter.retry_after(f"user{last}", f"client{last}") > 0
    clock.now += FORGET_SECONDS + 1
    limiter.failed("late", "client")
    assert len(limiter) == 3  # the stale keys went with the next failure


def test_refused_attempts_store_nothing(db: Database) -> None:
    clock = Clock()
    limiter = LoginLimiter(db, 1, clock=clock)
    limiter.failed("x", "c")
    held = len(limiter)
    assert limiter.retry_after("x", "c") > 0
    for n in range(200):
        limiter.retry_after(f"name{n}", f"client{n}")
    assert len(limiter) == held


def test_back_off_doubles_per_pair_and_is_capped_per_user(db: Database) -> None:
    clock = Clock()
    limiter = LoginLimiter(db, 2, clock=clock)
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


def test_success_clears_the_user_but_not_the_client(db: Database) -> None:
    clock = Clock()
    limiter = LoginLimiter(db, 1, clock=clock)
    for n in range(10):
        clock.now += limiter.retry_after(f"name{n}", "sprayer")
        limiter.failed(f"name{n}", "sprayer")
    limiter.succeeded("name9", "sprayer")
    assert limiter.retry_after("name9", "other client") == 0
    assert limiter.retry_after("someone", "sprayer") > 0  # spraying names still backs off


def test_limiters_on_one_database_count_the_same_failures(db: Database) -> None:
    """Two limiters are two serve processes: failures made through either, at once, all
    count (an upsert per key, not a read-then-write that would lose some)."""
    clock = Clock()
    first, second = LoginLimiter(db, 50, clock=clock), LoginLimiter(db, 50, clock=clock)
    with ThreadPoolExecutor(4) as pool:
        for n in range(40):
            pool.submit((first, second)[n % 2].failed, "bob", "10.0.0.1")
    assert first.retry_after("bob", "10.0.0.1") == 0  # 40 < 50 free failures
    for _ in range(10):
        second.failed("bob", "10.0.0.1")
    assert first.retry_after("bob", "10.0.0.1") > 0  # the 50th failure, made elsewhere
    second.succeeded("bob", "10.0.0.1")
    assert first.retry_after("bob", "elsewhere") == 0


def test_a_user_name_with_a_lone_surrogate_is_counted(db: Database) -> None:
    limiter = LoginLimiter(db, 1)
    limiter.failed("\ud800", "c")
    assert limiter.retry_after("\ud800", "c") > 0


def test_password_checks_take_turns(db: Database) -> None:
    """Each argon2 check takes 64 MiB: parallel logins must not each get one at once."""
    limiter = LoginLimiter(db, 5)
    with ExitStack() as held:
        for _ in range(VERIFY_AT_ONCE):
            held.enter_context(limiter.verifying())
        with pytest.raises(LoginBusy), limiter.verifying():
            pass
    with limiter.verifying():  # the turns came back
        pass

"""What anonymous and ordinary callers can reach or slow down: health, metrics, the system
view, API docs, Host headers, response headers, and the login rate limit behind a proxy."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update

from casescope.config import Settings
from casescope.jobs.registry import register, unregister
from casescope.model.enums import JobState, Operation
from casescope.model.tables import EvidenceFile, Job, WorkerRecord
from casescope.web.app import allowed_hosts
from casescope.web.health import REFRESH_SECONDS
from casescope.web.ratelimit import USER_MAX_DELAY, LoginLimiter
from tests.web.conftest import PASSWORD, Web

#: Only a bound for a request that never comes back (the old code, under the index lock).
HANG_SECONDS = 30


def _client(web: Web, address: str, **headers: str) -> TestClient:
    return TestClient(
        web.app, base_url="https://testserver", client=(address, 40000), headers=headers
    )


def _answers_while_the_index_is_held(web: Web, client: TestClient, path: str) -> int:
    """The status of `path`, asked while this thread holds the index lock; 0 if it hangs."""
    statuses: list[int] = []
    asker = threading.Thread(target=lambda: statuses.append(client.get(path).status_code))
    with web.app.state.web.index.use():
        asker.start()
        asker.join(HANG_SECONDS)
        answered = not asker.is_alive()
    asker.join()
    return statuses[0] if answered else 0


def test_health_and_metrics_never_wait_for_the_index(web: Web) -> None:
    """The old routes took the index lock for every anonymous call."""
    anonymous = _client(web, "203.0.113.5")
    assert anonymous.get("/health").status_code == 200
    assert _answers_while_the_index_is_held(web, anonymous, "/health") == 200
    scraper = _client(web, "127.0.0.1")  # loopback: allowed by default
    assert _answers_while_the_index_is_held(web, scraper, "/metrics") == 200


def test_figures_are_collected_at_most_once_a_second(web: Web) -> None:
    health = web.app.state.health
    before, started = health.refreshes, time.monotonic()
    for _ in range(200):
        assert web.anonymous.get("/health").status_code == 200
    elapsed = time.monotonic() - started
    assert health.refreshes - before <= elapsed / REFRESH_SECONDS + 1


def test_anonymous_health_is_minimal_and_metrics_need_admin_or_allow_list(web: Web) -> None:
    assert web.anonymous.get("/health").json() == {"status": "ok"}
    assert web.anonymous.get("/metrics").status_code == 401
    assert web.clients["reader"].get("/metrics").status_code == 403
    assert web.clients["reader"].get("/health").json() == {"status": "ok"}
    admin_health = web.clients["admin"].get("/health").json()
    assert admin_health["db"] == admin_health["store"] == "ok" and "workers" in admin_health
    assert 'casescope_files{status="completed"}' in web.clients["admin"].get("/metrics").text
    local = _client(web, "127.0.0.1")
    assert local.get("/metrics").status_code == 200 and "db" in local.get("/health").json()
    # a proxy on loopback that nobody declared speaks for anyone: not allow-listed
    proxied = _client(web, "127.0.0.1", **{"X-Forwarded-For": "198.51.100.9"})
    assert proxied.get("/metrics").status_code == 401


def test_metrics_allow_list_and_trusted_proxies(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = web.app.state.web.settings
    monkeypatch.setattr(settings, "metrics_allow", "192.0.2.0/24")
    monkeypatch.setattr(settings, "trusted_proxies", "10.0.0.1")
    assert _client(web, "192.0.2.77").get("/metrics").status_code == 200
    assert _client(web, "127.0.0.1").get("/metrics").status_code == 401
    via_proxy = _client(web, "10.0.0.1", **{"X-Forwarded-For": "6.6.6.6, 192.0.2.8"})
    assert via_proxy.get("/metrics").status_code == 200  # the right-most untrusted hop
    forged = _client(web, "10.0.0.1", **{"X-Forwarded-For": "192.0.2.8, 6.6.6.6"})
    assert forged.get("/metrics").status_code == 401


def _busy_worker(web: Web, case_id: int) -> int:
    """Register a live worker (this process) working on a file of `case_id`."""
    db = web.app.state.web.db
    with db.read() as session:
        file_id = session.scalar(select(EvidenceFile.id).where(EvidenceFile.case_id == case_id))
    register(db, "test-worker", "test-host")
    with db.session() as session:
        session.execute(
            update(WorkerRecord)
            .where(WorkerRecord.id == "test-worker")
            .values(current_file_id=file_id, heartbeat_at=time.time() + 600)
        )
    return file_id


def _system_with_worker(web: Web) -> dict:
    """Admin's view once the refresher has seen the worker (figures are up to 1 s old)."""
    for _ in range(100):
        report = web.clients["admin"].get("/api/system").json()
        if any(w["id"] == "test-worker" for w in report["workers"]):
            return report
        time.sleep(0.1)
    raise AssertionError("the worker never showed up in /api/system")


def test_system_details_are_for_admins_others_see_their_cases_only(web: Web) -> None:
    """The old view showed every user every worker's pid and file, and the whole queue."""
    file_id = _busy_worker(web, web.case_id)
    try:
        admin = _system_with_worker(web)
        assert any(w.get("pid") for w in admin["workers"]) and admin["queue"]
        reader = web.clients["reader"].get("/api/system").json()  # granted the case
        assert reader["workers"] == [{"case_id": web.case_id, "current_file_id": file_id}]
        outsider = web.clients["outsider"].get("/api/system").json()
        assert outsider["workers"] == [] and outsider["queue"] == {}
        page = web.clients["outsider"].get("/system").text
        assert "<th>pid</th>" not in page and f"<td>{file_id}</td>" not in page
        page = web.clients["admin"].get("/system").text  # the workers as a table
        assert "<th>pid</th>" in page and f"<td>{file_id}</td>" in page
        page = web.clients["reader"].get("/system").text
        assert "<th>pid</th>" not in page and f"<td>{file_id}</td>" in page
    finally:
        unregister(web.app.state.web.db, "test-worker")


def _held_by_host(web: Web, host: str) -> tuple[str, int]:
    """A live worker of `host` holding a file of the case (a running job leased to it);
    (its id, the file id)."""
    db = web.app.state.web.db
    worker_id = f"{host}-4242-abcdef12"
    with db.session() as session:
        file_id = session.scalar(select(EvidenceFile.id).where(EvidenceFile.case_id == web.case_id))
        session.add(
            Job(
                file_id=file_id,
                operation=Operation.FULL,
                state=JobState.RUNNING,
                worker_id=worker_id,
                lease_until=time.time() + 600,
            )
        )
    register(db, worker_id, host)
    with db.session() as session:
        session.execute(
            update(WorkerRecord)
            .where(WorkerRecord.id == worker_id)
            .values(current_file_id=file_id, heartbeat_at=time.time() + 600)
        )
    return worker_id, file_id


def test_system_page_and_metrics_show_each_host_and_the_files_it_holds(web: Web) -> None:
    worker_id, file_id = _held_by_host(web, "lab-7")
    db = web.app.state.web.db
    try:
        for _ in range(100):  # the refresher's figures are up to 1 s old
            report = web.clients["admin"].get("/api/system").json()
            if [h["host"] for h in report["hosts"]] == ["lab-7"]:
                break
            time.sleep(0.1)
        assert report["hosts"] == [
            {
                "host": "lab-7",
                "workers": 1,
                "rss_mb": report["hosts"][0]["rss_mb"],
                "files_held": 1,
                "file_ids": [file_id],
            }
        ]
        assert web.clients["reader"].get("/api/system").json()["hosts"] is None
        page = web.clients["admin"].get("/system").text
        assert 'id="system-hosts"' in page and f"<td>lab-7</td><td>1</td><td>1 ({file_id})" in page
        assert 'id="system-hosts"' not in web.clients["reader"].get("/system").text
        metrics = web.clients["admin"].get("/metrics").text
        assert 'casescope_workers{host="lab-7"} 1' in metrics
        assert 'casescope_files_held{host="lab-7"} 1' in metrics
    finally:
        unregister(db, worker_id)
        with db.session() as session:
            session.execute(delete(Job).where(Job.worker_id == worker_id))


def test_api_docs_need_a_login_by_default(web: Web) -> None:
    assert web.anonymous.get("/openapi.json").status_code == 401
    assert web.anonymous.get("/docs", follow_redirects=False).status_code == 303
    assert web.anonymous.get("/redoc", follow_redirects=False).status_code == 303
    assert "paths" in web.clients["reader"].get("/openapi.json").json()
    assert web.clients["reader"].get("/docs").status_code == 200


def test_hosts_other_than_the_allowed_ones_are_400(web: Web) -> None:
    """DNS rebinding: a page of evil.example resolving to 127.0.0.1 sends its own Host."""
    rebound = TestClient(web.app, base_url="https://evil.example")
    assert rebound.get("/health").status_code == 400
    assert rebound.post("/api/login", json={"username": "a", "password": "b"}).status_code == 400
    hosts = allowed_hosts(Settings(allowed_hosts=""), "10.1.2.3")
    assert {"localhost", "127.0.0.1", "[::1]", "10.1.2.3"} <= set(hosts)
    assert "0.0.0.0" not in allowed_hosts(Settings(allowed_hosts=""), "0.0.0.0")
    assert allowed_hosts(Settings(allowed_hosts="cases.example, ::1"), "::") == [
        "cases.example",
        "::1",
        "[::1]",
    ]


def test_hsts_and_no_store_on_pages(web: Web) -> None:
    page = web.clients["reader"].get(f"/cases/{web.case_id}")
    assert page.headers["strict-transport-security"].startswith("max-age=")
    assert page.headers["cache-control"] == "no-store"
    assert web.anonymous.get("/login").headers["cache-control"] == "no-store"


class Clock:
    """Wall-clock seconds (the limiter's rows may hold other tests' real failure times)
    that the test moves by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _login(client: TestClient, username: str, password: str) -> tuple[int, int]:
    """(status, Retry-After or 0)."""
    r = client.post("/api/login", json={"username": username, "password": password})
    return r.status_code, int(r.headers.get("retry-after", 0))


@pytest.fixture
def proxied(web: Web, monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The app behind a trusted proxy at 10.0.0.7, with a limiter on a clock the test moves."""
    clock = Clock()
    limiter = LoginLimiter(web.app.state.web.db, 5, clock=clock)
    monkeypatch.setattr(web.app.state, "login_limiter", limiter)
    monkeypatch.setattr(web.app.state.web.settings, "trusted_proxies", "10.0.0.0/8")
    return clock


def test_clients_behind_a_trusted_proxy_are_limited_apart(web: Web, proxied: Clock) -> None:
    """Behind a proxy the old limiter saw one client: one sprayer locked everyone out."""
    sprayer = _client(web, "10.0.0.7", **{"X-Forwarded-For": "198.51.100.1"})
    statuses = {_login(sprayer, f"nobody{n}", "wrong password")[0] for n in range(25)}
    assert 429 in statuses
    colleague = _client(web, "10.0.0.7", **{"X-Forwarded-For": "203.0.113.2"})
    assert _login(colleague, "reader", PASSWORD) == (200, 0)
    # a client that is not a trusted proxy cannot escape by forging the header
    forger = _client(web, "192.0.2.66")
    for n in range(25):
        forger.headers["X-Forwarded-For"] = f"198.51.100.{n}"
        status, _ = _login(forger, f"nobody{n}", "wrong password")
    assert status == 429


def test_a_flood_against_a_user_does_not_lock_them_out(web: Web, proxied: Clock) -> None:
    """Ten minutes of an attacker trying the analyst's password as often as allowed: the
    analyst, elsewhere, waits at most the user's short back-off."""
    attacker = _client(web, "10.0.0.7", **{"X-Forwarded-For": "198.51.100.1"})
    started, tried = proxied.now, 0
    while proxied.now - started < 600:
        status, wait = _login(attacker, "analyst", "wrong password")
        assert status in (401, 429)
        tried += status == 401
        proxied.now += max(wait, 1)
    assert tried < 25  # back-off: from 5 a minute at first to one a minute
    analyst = _client(web, "10.0.0.7", **{"X-Forwarded-For": "203.0.113.9"})
    status, wait = _login(analyst, "analyst", PASSWORD)
    if status == 429:
        assert 0 < wait <= USER_MAX_DELAY
        proxied.now += wait
        status, wait = _login(analyst, "analyst", PASSWORD)
    assert status == 200

"""What every browser test needs: a real `casescope serve` on a free port, evidence uploaded
through its API, and a headless Debian Chromium driven by Playwright.

`scripts/browser.sh` installs both; modules mark themselves with `NEEDS_BROWSER`, so they skip
only when Chromium or Playwright is not installed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import httpx2
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NEEDS_BROWSER = pytest.mark.skipif(
    CHROMIUM is None or find_spec("playwright") is None,
    reason="Debian chromium or Playwright is not installed (run scripts/browser.sh)",
)
PASSWORD = "correct horse battery"
ADMIN = "admin"
VIEWPORT = {"width": 1366, "height": 768}
UP_SECONDS = 60  # for `serve` to answer /health
SEARCHABLE_SECONDS = 300  # for uploaded samples to become searchable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_env(home: Path, *, workers: int = 2) -> dict[str, str]:
    """The environment of the CLI and `serve` for a home at `home`: quick heartbeats and
    short leases, so a test sees work picked up and finished soon."""
    return {
        **os.environ,
        "CASESCOPE_HOME": str(home),
        "CASESCOPE_SECRET_KEY": secrets.token_urlsafe(48),
        "CASESCOPE_WORKERS": str(workers),
        "CASESCOPE_HEARTBEAT_SECONDS": "0.5",
        "CASESCOPE_LEASE_SECONDS": "5",
    }


def cli(env: dict[str, str], *args: str, stdin: str = "", timeout: float | None = None) -> None:
    """Run `casescope ARGS`; a non-zero exit fails the test."""
    subprocess.run(
        [sys.executable, "-m", "casescope", *args],
        input=stdin,
        text=True,
        env=env,
        check=True,
        capture_output=True,
        timeout=timeout,
    )


def create_admin(env: dict[str, str]) -> None:
    cli(env, "user", "create", ADMIN, "--admin", stdin=f"{PASSWORD}\n{PASSWORD}\n")


def _wait_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + UP_SECONDS
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx2.get(f"{base}/health").status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"casescope serve did not come up (exit code {proc.poll()})")


@contextmanager
def serve(env: dict[str, str], console: Path | None = None) -> Iterator[str]:
    """`casescope serve` on a free port, once /health answers; its base URL. With `console`,
    what it prints (the setup token among it) goes to that file."""
    port = free_port()
    command = [sys.executable, "-m", "casescope", "serve", "--port", str(port)]
    with contextlib.ExitStack() as files:
        out = files.enter_context(console.open("wb")) if console is not None else None
        proc = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT if out else None
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(base, proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(30)


@contextmanager
def admin_serve(home: Path) -> Iterator[str]:
    """`serve` on a fresh `home` whose admin account exists (`create_admin`); its base URL."""
    env = serve_env(home)
    create_admin(env)
    with serve(env) as base:
        yield base


@contextmanager
def api_client(base: str) -> Iterator[httpx2.Client]:
    """An HTTP client logged in as the admin, with the CSRF token set."""
    with httpx2.Client(base_url=base, timeout=120) as http:
        login = http.post("/api/login", json={"username": ADMIN, "password": PASSWORD})
        http.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        # the cookie is Secure: httpx keeps it off plain http, so it is sent by hand
        http.headers["Cookie"] = f"casescope_session={login.cookies['casescope_session']}"
        yield http


def upload_searchable(http: httpx2.Client, case_id: int, paths: Sequence[Path]) -> None:
    """Upload `paths` into the case and wait until they are searchable."""
    files = [("files", (p.name, p.read_bytes())) for p in paths]
    body = http.post(f"/api/cases/{case_id}/files/upload", files=files).json()
    url = f"/api/cases/{case_id}/progress?first_id={body['first_id']}&last_id={body['last_id']}"
    deadline = time.monotonic() + SEARCHABLE_SECONDS
    while not http.get(url).json()["searchable"]:
        assert time.monotonic() < deadline, "the samples did not become searchable"
        time.sleep(0.5)


def artifacts_dir(default: Path) -> Path:
    """Where screenshots go: `$CASESCOPE_ARTIFACTS`, else `default`."""
    folder = os.environ.get("CASESCOPE_ARTIFACTS")
    path = Path(folder) if folder else default
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright's `Browser`): a launch costs a second or more, so a
    module launches one (tests/browser/conftest.py `browser`) and each test opens pages of
    its own in it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def chromium_page(browser: Any, **options: Any) -> Iterator[Any]:
    """A new page at 1366×768 in a browser context of its own (Playwright's `new_context`
    options added): no cookie, storage or download setting is shared with another test."""
    context = browser.new_context(viewport=VIEWPORT, **options)
    try:
        yield context.new_page()
    finally:
        context.close()


def submit(page: Any, selector: str) -> None:
    """Click what posts a form or follows a link, and wait for the page the server answers
    with: reading the page straight after a bare click can catch the old page or none (an
    empty list), and `wait_for_url` of a URL the old page also has returns at once."""
    with page.expect_navigation():
        page.click(selector)


def log_in(page: Any, base: str) -> None:
    """Log the page in as the admin through the login form."""
    page.goto(f"{base}/login")
    page.fill("input[name=username]", ADMIN)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")

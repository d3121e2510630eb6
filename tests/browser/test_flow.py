"""The whole analyst flow in real headless Chromium (Debian `chromium`, driven by Playwright).

`scripts/browser.sh` installs both; this test skips only when they are not installed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

from tests.web.conftest import SAMPLES

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PASSWORD = "correct horse battery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {
        **os.environ,
        "CASESCOPE_HOME": str(tmp_path / "home"),
        "CASESCOPE_SECRET_KEY": secrets.token_urlsafe(48),
        "CASESCOPE_WORKERS": "2",
        "CASESCOPE_HEARTBEAT_SECONDS": "0.5",
        "CASESCOPE_LEASE_SECONDS": "5",
    }
    cli = [sys.executable, "-m", "casescope"]
    subprocess.run(
        [*cli, "user", "create", "admin", "--admin"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    port = _free_port()
    proc = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx2.get(f"{base}/health").status_code == 200:
                break
        except httpx2.TransportError:
            time.sleep(0.3)
    yield base
    proc.terminate()
    proc.wait(30)


def test_login_upload_search_tag_export(server: str, attack_samples: Path, tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("Debian chromium is not installed (run scripts/browser.sh)")
    playwright = pytest.importorskip("playwright.sync_api", reason="run scripts/browser.sh")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(accept_downloads=True)
        page.goto(f"{server}/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.fill("#new-case input[name=name]", "browser case")
        page.click("#new-case button[type=submit]")
        page.click("text=Evidence")
        page.set_input_files("#upload-files", [str(attack_samples / s) for s in SAMPLES])
        page.click("#upload-form button[type=submit]")
        page.wait_for_selector("#file-table td.status:has-text('completed')", timeout=240_000)
        page.wait_for_function(
            "[...document.querySelectorAll('#file-table td.status')]"
            ".every(td => /completed|failed/.test(td.textContent))",
            timeout=240_000,
        )
        page.click("nav >> text=Search")
        page.fill("#search-form input[name=q]", "")
        page.click("#search-form button[type=submit]")
        assert "matching events" in page.inner_text("#result-count")
        page.click("a.event-link >> nth=0")
        page.click("#raw-json summary")  # the original record is collapsed under the fields
        assert page.inner_text("#raw")
        page.fill("#tag-form input[name=label]", "suspicious")
        page.click("#tag-form button[value=tag]")
        assert "tag:suspicious" in page.inner_text("#marks")
        page.go_back()
        page.go_back()
        with page.expect_download() as download:
            page.click("text=CSV")
        target = tmp_path / "export.csv"
        download.value.save_as(target)
        assert target.read_text().startswith("ts,file_id,seq")
        browser.close()


def test_jobs_page_follows_progress_live(server: str, tmp_path: Path) -> None:
    """The Jobs page's progress arrives over Server-Sent Events (CSP-clean script), and its
    buttons pause and cancel an operation."""
    if CHROMIUM is None:
        pytest.skip("Debian chromium is not installed (run scripts/browser.sh)")
    playwright = pytest.importorskip("playwright.sync_api", reason="run scripts/browser.sh")
    from casescope.config import Settings
    from casescope.model.db import Database
    from casescope.model.enums import OperationKind
    from casescope.services import operations as ops
    from casescope.services.cases import get_or_create_case

    db = Database(Settings(home=tmp_path / "home"), run_migrations=False)
    case = get_or_create_case(db, "jobs case")[0]
    operation_id = ops.create_operation(db, case.id, OperationKind.REINDEX, "test")  # stays open
    row = f"tr[data-op='{operation_id}']"
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{server}/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{server}/cases/{case.id}/jobs")
        assert page.inner_text(f"{row} td.state") == "running"
        ops.pause(db, operation_id, "test")  # elsewhere: the page must learn it by itself
        page.wait_for_selector(f"{row} td.state:has-text('paused')", timeout=60_000)
        assert page.is_visible(f"{row} form[data-action=resume] button")
        assert not page.is_visible(f"{row} form[data-action=pause] button")
        page.click(f"{row} form[data-action=cancel] button")
        page.wait_for_selector(f"{row} td.state:has-text('cancelled')", timeout=60_000)
        assert not [e for e in errors if "Content Security Policy" in e], errors
        browser.close()
    db.dispose()

"""The whole analyst flow in real headless Chromium (Debian `chromium`, driven by Playwright).

`scripts/browser.sh` installs both; this test skips only when they are not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.browser.support import (
    NEEDS_BROWSER,
    admin_serve,
    chromium_page,
    log_in,
    submit,
)
from tests.web.conftest import SAMPLES

pytestmark = NEEDS_BROWSER


@dataclass(frozen=True)
class Server:
    base: str  # its URL
    home: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One `serve` for the module (a start is a process, its pool and the index): each test
    works in a case of its own."""
    home = tmp_path_factory.mktemp("flow") / "home"
    with admin_serve(home) as base:
        yield Server(base, home)


def test_login_upload_search_tag_export(
    browser: Any, server: Server, attack_samples: Path, tmp_path: Path
) -> None:
    with chromium_page(browser, accept_downloads=True) as page:
        log_in(page, server.base)
        page.fill("#new-case input[name=name]", "browser case")
        submit(page, "#new-case button[type=submit]")
        submit(page, "text=Evidence")
        page.set_input_files("#upload-files", [str(attack_samples / s) for s in SAMPLES])
        page.click("#upload-form button[type=submit]")
        page.wait_for_selector("#file-table td.status:has-text('completed')", timeout=240_000)
        page.wait_for_function(
            "[...document.querySelectorAll('#file-table td.status')]"
            ".every(td => /completed|failed/.test(td.textContent))",
            timeout=240_000,
        )
        submit(page, "nav >> text=Search")
        page.fill("#search-form input[name=q]", "")
        submit(page, "#search-form button[type=submit]")
        assert "matching event" in page.inner_text("#result-count")
        submit(page, "a.event-link >> nth=0")
        page.click("#raw-json summary")  # the original record is collapsed under the fields
        assert page.inner_text("#raw")
        page.fill("#tag-form input[name=label]", "suspicious")
        submit(page, "#tag-form button[value=tag]")
        assert "tag:suspicious" in page.inner_text("#marks")
        page.go_back()
        page.go_back()
        with page.expect_download() as download:
            page.click("text=CSV")
        target = tmp_path / "export.csv"
        download.value.save_as(target)
        assert target.read_text().startswith("ts,file_id,seq")


def test_jobs_page_follows_progress_live(browser: Any, server: Server) -> None:
    """The Jobs page's progress arrives over Server-Sent Events (CSP-clean script), and its
    buttons pause and cancel an operation."""
    from casescope.config import Settings
    from casescope.model.db import Database
    from casescope.model.enums import OperationKind
    from casescope.services import operations as ops
    from casescope.services.cases import get_or_create_case

    db = Database(Settings(home=server.home), run_migrations=False)
    case = get_or_create_case(db, "jobs case")[0]
    operation_id = ops.create_operation(db, case.id, OperationKind.REINDEX, "test")  # stays open
    row = f"tr[data-op='{operation_id}']"
    with chromium_page(browser) as page:
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        log_in(page, server.base)
        page.goto(f"{server.base}/cases/{case.id}/jobs")
        assert page.inner_text(f"{row} td.state") == "running"
        ops.pause(db, operation_id, "test")  # elsewhere: the page must learn it by itself
        page.wait_for_selector(f"{row} td.state:has-text('paused')", timeout=60_000)
        assert page.is_visible(f"{row} form[data-action=resume] button")
        assert not page.is_visible(f"{row} form[data-action=pause] button")
        # cancel asks first: declined, nothing changes; accepted, the operation is cancelled
        asked: list[str] = []
        page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
        page.click(f"{row} form[data-action=cancel] button")
        assert asked and f"Cancel operation {operation_id}?" in asked[0]
        assert ops.get_progress(db, operation_id).state == "paused"
        page.once("dialog", lambda d: d.accept())
        page.click(f"{row} form[data-action=cancel] button")
        page.wait_for_selector(f"{row} td.state:has-text('cancelled')", timeout=60_000)
        assert not [e for e in errors if "Content Security Policy" in e], errors
    db.dispose()

"""Uploads, case settings and case deletion in real headless Chromium against `casescope serve`.

One server: an upload shows each file's bytes and the total, its files appear in the table
at once and finish there without a reload; a closed case refuses an upload on the page; a
case is deleted after its name is typed, and the other case, which shares a file with it,
keeps every event. Screenshots go to `$CASESCOPE_ARTIFACTS` (else the test's tmp dir), and
with `CASESCOPE_DOCS_IMG` set (a folder, e.g. docs/img) there too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.support import (
    NEEDS_BROWSER,
    admin_serve,
    api_client,
    artifacts_dir,
    chromium_page,
    log_in,
    submit,
    upload_searchable,
)
from tests.web.conftest import SAMPLES

pytestmark = NEEDS_BROWSER


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with admin_serve(tmp_path_factory.mktemp("lifecycle") / "home") as base:
        yield base


def _shot(page: Any, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(artifacts_dir(tmp_path) / name))
    if docs := os.environ.get("CASESCOPE_DOCS_IMG"):
        page.screenshot(path=str(Path(docs) / name))


def _new_case(base: str, name: str) -> int:
    with api_client(base) as http:
        return http.post("/api/cases", json={"name": name}).json()["id"]


def test_upload_shows_bytes_and_rows_live(
    browser: Any, server: str, attack_samples: Path, tmp_path: Path
) -> None:
    case_id = _new_case(server, "upload case")
    paths = [str(attack_samples / s) for s in SAMPLES]
    with chromium_page(browser) as page:
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        log_in(page, server)
        page.goto(f"{server}/cases/{case_id}/evidence")
        page.evaluate("window.notReloaded = true")
        page.set_input_files("#upload-files", paths)
        page.click("#upload-form button[type=submit]")
        # every file's line and the total reach their full size
        page.wait_for_selector("#upload-status:has-text('uploaded:')", timeout=120_000)
        lines = page.locator("#upload-list li")
        assert lines.count() == len(SAMPLES)
        for i in range(len(SAMPLES)):
            sent, _, size = lines.nth(i).locator(".bytes").inner_text().partition(" / ")
            assert sent == size and size.endswith("KB")
        assert page.eval_on_selector("#upload-total", "b => b.value === b.max && !b.hidden")
        # the new rows are in the table at once, and finish there live
        assert page.locator("#file-table tr[data-id]").count() == len(SAMPLES)
        from playwright.sync_api import expect  # here: the module must load without it

        statuses = page.locator("#file-table td.status")
        expect(statuses).to_have_text(["completed"] * len(SAMPLES), timeout=240_000)
        assert page.evaluate("window.notReloaded === true")
        assert "every new file is processed" in page.inner_text("#progress")
        assert not [e for e in errors if "Content Security Policy" in e], errors
        _shot(page, tmp_path, "lifecycle-upload.png")
        # rows drawn live read as the server draws them
        live = page.locator("#file-table td.size").all_inner_texts()
        live_status = page.locator("#file-table td.status-completed").count()
        page.reload()
        assert page.locator("#file-table td.size").all_inner_texts() == live
        assert live_status == len(SAMPLES)


def test_a_closed_case_refuses_an_upload(browser: Any, server: str, attack_samples: Path) -> None:
    """A closed case's Evidence page offers no upload; a page opened before the case was
    closed still has the form, and its upload is refused with the reason."""
    case_id = _new_case(server, "closing case")
    with chromium_page(browser) as page:
        log_in(page, server)
        page.goto(f"{server}/cases/{case_id}/evidence")  # opened while the case is open
        other = browser.new_context(viewport=page.viewport_size).new_page()
        log_in(other, server)
        other.goto(f"{server}/cases/{case_id}/settings")
        other.select_option("#case-status-select", "closed")
        submit(other, "#case-settings-form button[type=submit]")
        assert other.inner_text("#case-status") == "closed"
        other.goto(f"{server}/cases/{case_id}/evidence")
        assert "closed" in other.inner_text("#case-closed")
        assert other.locator("#upload-form").count() == 0
        page.set_input_files("#upload-files", [str(attack_samples / SAMPLES[0])])
        page.click("#upload-form button[type=submit]")
        page.wait_for_selector("#upload-status:has-text('upload failed')")
        assert "closed and read-only" in page.inner_text("#upload-status")
        other.goto(f"{server}/cases/{case_id}/settings")
        other.select_option("#case-status-select", "open")
        submit(other, "#case-settings-form button[type=submit]")
        assert other.inner_text("#case-status") == "open"


def test_delete_a_case_and_the_other_is_untouched(
    browser: Any, server: str, attack_samples: Path, tmp_path: Path
) -> None:
    keep, doomed = _new_case(server, "kept case"), _new_case(server, "doomed case")
    with api_client(server) as http:
        upload_searchable(http, keep, [attack_samples / s for s in SAMPLES[:2]])
        upload_searchable(http, doomed, [attack_samples / SAMPLES[0]])  # shares a file
        before = http.get(f"/api/cases/{keep}/events", params={"limit": 500}).json()
    with chromium_page(browser) as page:
        log_in(page, server)
        page.goto(f"{server}/cases/{doomed}/settings")
        assert page.is_disabled("#delete-button")
        page.fill("#delete-confirm", "doomed cas")
        assert page.is_disabled("#delete-button")
        page.fill("#delete-confirm", "doomed case")
        _shot(page, tmp_path, "lifecycle-settings.png")
        submit(page, "#delete-button")
        assert "doomed case" in page.inner_text("#deleted-note")
        page.goto(f"{server}/")
        assert "doomed case" not in page.inner_text("main")
        assert "kept case" in page.inner_text("main")
        response = page.goto(f"{server}/cases/{doomed}")
        assert response is not None and response.status == 404
    with api_client(server) as http:
        after = http.get(f"/api/cases/{keep}/events", params={"limit": 500}).json()
        assert after == before and after["total"] > 0
        assert http.get(f"/api/cases/{doomed}/events").status_code == 404

"""A case bundle through the browser against `casescope serve`: the admin downloads a case's
bundle from its settings page, uploads it on the import page under a new name, and the new
case holds the same events; a tampered bundle is refused on the page, naming its member.
Headless Debian Chromium at 1366x768."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.support import (
    NEEDS_BROWSER,
    admin_serve,
    api_client,
    chromium_page,
    log_in,
    submit,
    upload_searchable,
)
from tests.bundles import evidence_member, rewrite
from tests.web.conftest import SAMPLES

pytestmark = NEEDS_BROWSER


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with admin_serve(tmp_path_factory.mktemp("bundles") / "home") as base:
        yield base


def _events(base: str, case_id: int) -> int:
    with api_client(base) as http:
        r = http.get(f"/api/cases/{case_id}/events", params={"q": "*", "exact_total": "true"})
        assert r.status_code == 200, r.text
        return r.json()["total"]


def test_download_a_bundle_then_upload_it_under_a_new_name(
    browser: Any, server: str, attack_samples: Path, tmp_path: Path
) -> None:
    with api_client(server) as http:
        case_id = http.post("/api/cases", json={"name": "handed over"}).json()["id"]
        upload_searchable(http, case_id, [attack_samples / s for s in SAMPLES[:2]])
    events = _events(server, case_id)
    assert events > 0
    with chromium_page(browser, accept_downloads=True) as page:
        log_in(page, server)
        page.goto(f"{server}/cases/{case_id}/settings")
        with page.expect_download() as download:
            page.click("#export-button")
        assert download.value.suggested_filename == "handed over.zip"
        bundle = tmp_path / "bundle.zip"
        download.value.save_as(bundle)
        tampered = rewrite(bundle, tmp_path / "t.zip", {evidence_member(bundle): b"tampered"})
        page.goto(f"{server}/")
        submit(page, "#import-link")
        page.set_input_files("#import-bundle", str(tampered))
        page.fill("#import-as", "tampered copy")
        submit(page, "#import-button")
        assert evidence_member(bundle) in page.inner_text("main")
        page.set_input_files("#import-bundle", str(bundle))
        page.fill("#import-as", "received")
        page.click("#import-button")
        page.wait_for_url(f"{server}/cases/*")
        new_id = int(page.url.rsplit("/", 1)[1])
        assert "received" in page.inner_text("main")
        page.goto(f"{server}/")
        assert "tampered copy" not in page.inner_text("main")
    assert new_id != case_id
    assert _events(server, new_id) == events

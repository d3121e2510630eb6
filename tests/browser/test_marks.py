"""Marks and notes in real headless Chromium (Debian `chromium`, driven by Playwright) against
a real `casescope serve` with real attack samples, at 1366×768.

Tag two rows from the search page's marks bar → find them with `tag:` → untag one on its
event page (author and time shown) → the tag search has one left; star a row with its own
button → `is:starred`; write a note on an event → find it with `note:` → edit and delete
it. No console error (a CSP violation included) or failed request on the way. Screenshots
go to `$CASESCOPE_ARTIFACTS` (else the test's tmp folder), and with `CASESCOPE_DOCS_IMG`
set (a folder, e.g. docs/img) the two docs/web.md shows.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.support import (
    NEEDS_BROWSER,
    api_client,
    artifacts_dir,
    chromium_page,
    create_admin,
    log_in,
    serve,
    serve_env,
    submit,
    upload_searchable,
)

pytestmark = NEEDS_BROWSER

SAMPLES = (
    "Lateral Movement/LM_Remote_Service02_7045.evtx",  # 3 × 7045
    "Credential Access/kerberos_pwd_spray_4771.evtx",  # 9 × 4768, 2 × 4771, 1 × 1102
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, attack_samples: Path) -> Iterator[tuple]:
    """The server's base URL, the case the samples are in, and the screenshot folder."""
    root = tmp_path_factory.mktemp("marks")
    env = serve_env(root / "home")
    create_admin(env)
    with serve(env) as base:
        with api_client(base) as http:
            case_id = http.post("/api/cases", json={"name": "marks"}).json()["id"]
            upload_searchable(http, case_id, [attack_samples / s for s in SAMPLES])
        yield base, case_id, artifacts_dir(root / "artifacts")


@pytest.fixture
def page(browser: Any, served: tuple) -> Iterator:  # type: ignore[type-arg]
    base, _, _ = served
    with chromium_page(browser) as tab:
        errors: list[str] = []
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.on(
            "response",
            lambda r: (
                errors.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico")
                else None
            ),
        )
        log_in(tab, base)
        yield tab
        assert not errors, errors


def _search(page, base: str, case_id: int, query: str) -> int:  # type: ignore[no-untyped-def]
    """Run `query` from the search form; how many rows the page shows."""
    page.goto(f"{base}/cases/{case_id}/search")
    page.fill("#search-form input[name=q]", query)
    submit(page, "#search-form button[type=submit]")
    assert "matching event" in page.inner_text("#result-count")
    return page.locator("#results tbody tr .row-select").count()


def _shot(page, folder: Path, name: str, at: str) -> None:  # type: ignore[no-untyped-def]
    """A screenshot of the viewport with the element `at` at its top."""
    page.locator(at).evaluate("e => e.scrollIntoView()")
    page.screenshot(path=str(folder / name))
    docs = os.environ.get("CASESCOPE_DOCS_IMG")
    if docs:
        shutil.copy(folder / name, Path(docs) / name)


def test_tag_rows_search_by_tag_untag_and_star(page, served: tuple) -> None:  # type: ignore[no-untyped-def]
    base, case_id, shots = served
    assert _search(page, base, case_id, "EventID:7045") == 3
    page.check("#results .row-select >> nth=0")
    page.check("#results .row-select >> nth=1")
    page.fill("#marks-bar input[name=label]", "lateral-movement")
    submit(page, "#marks-bar button[value=tag]")
    assert "q=EventID%3A7045" in page.url  # back on the same search
    assert page.locator("#results .mark-tag").count() == 2
    submit(page, "#results .row-star >> nth=0")  # star the first row from its own button
    assert page.locator("#results .row-star >> nth=0").inner_text() == "★"
    _shot(page, shots, "marks-search.png", "#marks-bar")

    assert _search(page, base, case_id, "tag:lateral-movement") == 2
    assert _search(page, base, case_id, "is:starred") == 1
    submit(page, "nav >> text=Tags")
    assert "lateral-movement" in page.inner_text("#tags") and "2" in page.inner_text("#tags")
    submit(page, "#tags a.tag-link")  # the tag's own search
    assert page.input_value("#search-form input[name=q]") == "tag:lateral-movement"
    submit(page, "a.event-link >> nth=0")
    marks = page.inner_text("#marks")
    assert "tag:lateral-movement" in marks and "by admin" in marks
    submit(page, "#marks button[aria-label='remove tag lateral-movement']")
    assert "tag:lateral-movement" not in page.inner_text("#marks")
    assert _search(page, base, case_id, "tag:lateral-movement") == 1


def test_note_written_found_edited_and_deleted(page, served: tuple) -> None:  # type: ignore[no-untyped-def]
    base, case_id, shots = served
    assert _search(page, base, case_id, "EventID:1102") == 1
    submit(page, "a.event-link >> nth=0")
    event_url = page.url.split("?")[0]
    page.fill("#note-form textarea[name=text]", "Security log cleared <b>right after</b> the spray")
    submit(page, "#note-form button[type=submit]")
    note = page.locator("#notes article.note").first
    assert "<b>right after</b>" in note.locator(".note-text").inner_text()  # text, not markup
    assert note.locator(".note-author").inner_text() == "admin"
    page.fill("#tag-form input[name=label]", "anti-forensics")
    submit(page, "#tag-form button[value=tag]")
    _shot(page, shots, "marks-event.png", "#marks-section")

    assert _search(page, base, case_id, 'note:"right after"') == 1
    assert "1 note" in page.inner_text("#results")
    page.goto(event_url)
    page.click("#notes details.note-edit summary")
    page.fill("#notes details.note-edit textarea", "Log cleared by the attacker")
    submit(page, "#notes details.note-edit button[type=submit]")
    assert "edited" in page.inner_text("#notes article.note")
    assert _search(page, base, case_id, "note:attacker") == 1
    page.goto(event_url)
    submit(page, "#notes form.note-delete button")
    assert page.locator("#no-notes").is_visible()
    assert _search(page, base, case_id, "has:note") == 0

"""The case story in real headless Chromium (Debian `chromium`, driven by Playwright), against
a real `casescope serve` with real attack samples and a hostile NDJSON event.

Three events added with "+story" from search rows, one from its event page, a text written and
moved between them, the HTML report downloaded and opened from disk: the story's order, no
request but the file itself, nothing run. Screenshots at 1366×768 go to `$CASESCOPE_ARTIFACTS`
(else the test's tmp folder).
"""

from __future__ import annotations

import json
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
    "Credential Access/kerberos_pwd_spray_4771.evtx",
    "Lateral Movement/LM_Remote_Service02_7045.evtx",
)
XSS = "<img src=x onerror=\"document.title='owned'\">"
TEXT = "Initial access: the spray below. <b>not bold</b>"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, attack_samples: Path) -> Iterator[tuple]:
    """The server's base URL and the case the samples are in."""
    home = tmp_path_factory.mktemp("story")
    hostile = home / "hostile.ndjson"
    record = {"EventTime": "2024-05-01T10:00:00Z", "Hostname": XSS, "Message": XSS}
    hostile.write_text(json.dumps(record) + "\n")
    env = serve_env(home / "home")
    create_admin(env)
    with serve(env) as base:
        with api_client(base) as http:
            case_id = http.post("/api/cases", json={"name": "story <case>"}).json()["id"]
            upload_searchable(http, case_id, [*(attack_samples / s for s in SAMPLES), hostile])
        yield base, case_id


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return artifacts_dir(tmp_path_factory.mktemp("screenshots"))


def _kinds(page) -> list[str]:  # type: ignore[no-untyped-def]
    return page.eval_on_selector_all(
        "#story-items li.story-item", "items => items.map(i => i.dataset.kind)"
    )


def test_build_a_story_of_three_events_and_open_its_html_report(
    browser: Any, served: tuple, artifacts: Path, tmp_path: Path
) -> None:
    base, case_id = served
    with chromium_page(browser, accept_downloads=True) as page:
        log_in(page, base)
        search = f"{base}/cases/{case_id}/search?q=EventID%3A4771+OR+EventID%3A7045"
        page.goto(search)
        page.screenshot(path=str(artifacts / "story-search-rows.png"))
        for n in range(3):  # each click posts the row's form and comes back to the search
            submit(page, f"#results button.story-add >> nth={n}")
            assert page.url == search
        page.goto(f"{base}/cases/{case_id}/search?q=%22onerror%22")
        submit(page, "a.event-link >> nth=0")
        submit(page, "#story-form button")  # the event page's "Add to story"
        page.goto(f"{base}/cases/{case_id}/story")
        assert _kinds(page) == ["event"] * 4
        page.fill("#new-text", TEXT)
        submit(page, "#add-text button[type=submit]")
        for _ in range(3):  # from the end to second place
            submit(page, "li.kind-text button.move-up")
        assert _kinds(page) == ["event", "text", "event", "event", "event"]
        assert page.inner_text("li.kind-text .story-text") == TEXT
        assert page.title() != "owned"
        page.screenshot(path=str(artifacts / "story-page.png"), full_page=True)

        with page.expect_download() as download:
            page.click("#export-html")
        report = tmp_path / "report.html"
        download.value.save_as(report)

        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(report.as_uri())
        assert requests == [report.as_uri()]  # self-contained: nothing else is loaded
        assert page.title() == "Case report: story <case>"
        sections = page.eval_on_selector_all("#story > *", "items => items.map(i => i.className)")
        assert sections == ["event", "text story-text", "event", "event", "event"]
        assert page.inner_text(".story-text") == TEXT
        assert XSS in page.inner_text("#story")  # shown as text ...
        assert page.locator("#story img, #story b").count() == 0  # ... never as markup
        assert page.inner_text("#story").count("EventID 7045") == 3  # the first three by time
        page.screenshot(path=str(artifacts / "story-report.png"), full_page=True)

"""Friendly pages in real headless Chromium (issue 21, items 3, 4 and 7): an error page
inside the layout, Swagger UI at /docs under the CSP, the evidence table filtered, sorted
and paged, the audit log's tabs, IOCs from the navigation (a malformed IPv4 refused with a
message), the System page's tables.

One `casescope serve` for the module: three attack samples and a README (rejected at intake).
Screenshots go to `$CASESCOPE_ARTIFACTS` (and docs/img when `CASESCOPE_DOCS_IMG` is set).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
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
from tests.web.conftest import SAMPLES

pytestmark = NEEDS_BROWSER


@dataclass(frozen=True)
class Served:
    base: str
    case_id: int
    shots: Path
    docs: Path | None


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, attack_samples: Path) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("friendly-browser")
    env = serve_env(root / "home")
    create_admin(env)
    readme = root / "README.md"
    readme.write_text("# case notes\nnot a log\n")
    with serve(env) as base:
        with api_client(base) as http:
            case_id = http.post("/api/cases", json={"name": "friendly"}).json()["id"]
            upload_searchable(http, case_id, [*(attack_samples / s for s in SAMPLES), readme])
        docs = os.environ.get("CASESCOPE_DOCS_IMG")
        yield Served(base, case_id, artifacts_dir(root / "artifacts"), Path(docs) if docs else None)


@pytest.fixture(scope="module")
def page(browser: Any, served: Served) -> Iterator:  # type: ignore[type-arg]
    with chromium_page(browser) as tab:
        errors: list[str] = []
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: errors.append(str(e)))
        log_in(tab, served.base)
        yield tab
        assert not [e for e in errors if "Content Security Policy" in e], errors


def _shot(served: Served, page, name: str, doc: bool = False) -> None:  # type: ignore[no-untyped-def]
    page.screenshot(path=str(served.shots / f"{name}.png"))
    if doc and served.docs is not None:
        served.docs.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(served.docs / f"{name}.png"))


def test_an_unknown_case_is_a_page_inside_the_layout(served: Served, page) -> None:  # type: ignore[no-untyped-def]
    response = page.goto(f"{served.base}/cases/999999")
    assert response.status == 404
    assert page.inner_text("#error-page h1") == "404 · There is nothing here."
    assert page.inner_text("#error-detail") == "no case 999999"
    assert page.is_visible("header nav >> text=Cases")
    _shot(served, page, "error-404", doc=True)
    page.click("#error-page >> text=Back to your cases")
    page.wait_for_url(f"{served.base}/")


def test_docs_render_swagger_ui_under_the_csp(served: Served, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{served.base}/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock").count() > 50  # every route, not a blank page
    page.click(".opblock-summary:has-text('/api/cases/{case_id}/files/page')")
    page.wait_for_selector(".opblock.is-open")
    _shot(served, page, "api-docs", doc=True)


def test_the_evidence_table_filters_sorts_and_pages(served: Served, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{served.base}/cases/{served.case_id}/evidence")
    assert page.locator("#file-table tbody tr").count() == 4
    page.select_option("#file-filters select[name=status]", "rejected")
    page.click("#file-filters button[type=submit]")
    page.wait_for_url("**status=rejected**")
    rows = page.locator("#file-table tbody tr")
    assert rows.count() == 1 and rows.locator("td.status").inner_text() == "rejected"
    assert "README.md" in rows.locator("td.name").inner_text()
    page.click("#file-filters >> text=clear")
    page.wait_for_url(f"{served.base}/cases/{served.case_id}/evidence")
    page.click("#file-table th >> text=size")  # ascending, then descending
    page.wait_for_url("**order=asc**")
    page.click("#file-table th >> text=size")
    page.wait_for_url("**order=desc**")
    sizes = page.locator("#file-table td.size").evaluate_all(
        "cells => cells.map(c => Number(c.title.replace(/[^0-9]/g, '')))"
    )
    assert sizes == sorted(sizes, reverse=True) and len(sizes) == 4
    assert page.get_attribute("#file-table th[aria-sort=descending] a", "href")
    page.goto(f"{page.url}&per_page=2")
    assert "files 1–2 of 4 · page 1 of 2" in page.inner_text("#file-pager")
    # not wait_for_url("**page=2**"): the old URL, with per_page=2, matches it too
    submit(page, "#file-pager >> text=next →")
    assert "files 3–4 of 4 · page 2 of 2" in page.inner_text("#file-pager")
    assert "sort=size" in page.url and "order=desc" in page.url  # paging keeps the order
    _shot(served, page, "evidence-table", doc=True)


def test_the_audit_log_shows_actions_and_steps_apart(served: Served, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{served.base}/audit")
    actions = page.locator("#audit-table td.action").all_inner_texts()
    assert actions and not [a for a in actions if a.startswith("step.")]
    assert "user.login" in actions
    assert all(t.endswith(" UTC") for t in page.locator("#audit-table td.at").all_inner_texts())
    _shot(served, page, "audit-actions", doc=True)
    page.click("#audit-tabs >> text=Pipeline steps")
    page.wait_for_url("**view=steps**")
    steps = page.locator("#audit-table td.action").all_inner_texts()
    assert steps and all(a.startswith("step.") for a in steps)
    page.click("#audit-tabs >> text=People's actions")
    page.wait_for_url("**view=actions**")
    page.fill("#audit-filters input[name=actor]", "admin")
    page.select_option("#audit-filters select[name=action]", "case.create")
    page.click("#audit-filters button[type=submit]")
    page.wait_for_url("**action=case.create**")
    assert page.locator("#audit-table td.action").all_inner_texts() == ["case.create"]


def test_iocs_from_the_navigation_refuse_a_malformed_address(served: Served, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{served.base}/cases/{served.case_id}")
    page.click("header nav >> text=IOCs")
    page.wait_for_url(f"{served.base}/cases/{served.case_id}/iocs")
    page.fill("#ioc-add textarea[name=values]", "999.1.1.1")
    page.click("#ioc-add button[type=submit]")
    page.wait_for_selector("#error-detail")
    assert "looks like an IPv4 address" in page.inner_text("#error-detail")
    _shot(served, page, "ioc-malformed-ip")
    page.go_back()
    page.fill("#ioc-add textarea[name=values]", "999.1.1.1")
    page.select_option("#ioc-add select[name=type]", "string")
    page.click("#ioc-add button[type=submit]")
    page.wait_for_selector("text=1 added")


def test_the_system_page_is_tables(served: Served, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{served.base}/system")
    states = page.locator("#system-queue td:first-child").all_inner_texts()
    assert states[:3] == ["queued", "running", "done"]
    assert page.is_visible("#system-workers") or page.is_visible("#no-workers")
    _shot(served, page, "system")

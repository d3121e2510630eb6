"""The search workbench in real headless Chromium at 1366×768 against a real `casescope serve`:
the timeline's brush and bars, sidebar pivots and pills, detection badges from SigmaHQ rules,
field completion, paging both ways, first steps in an empty case.

One server for the module (rules imported with `casescope rules import` before the samples
are uploaded, so the badges come from the real pipeline). Screenshots of each page go to
`$CASESCOPE_ARTIFACTS` (else the test's tmp dir); with `CASESCOPE_DOCS_IMG` set (a folder,
e.g. docs/img) the ones docs/web.md shows are written there too.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.support import (
    NEEDS_BROWSER,
    api_client,
    artifacts_dir,
    chromium_page,
    cli,
    create_admin,
    log_in,
    serve,
    serve_env,
    submit,
    upload_searchable,
)
from tests.web.conftest import SAMPLES, XSS, xss_ndjson

pytestmark = NEEDS_BROWSER

MORE_SAMPLES = (
    "Credential Access/babyshark_mimikatz_powershell.evtx",
    "Credential Access/sysmon_10_lsass_mimikatz_sekurlsa_logonpasswords.evtx",
)
#: SigmaHQ rules that fire on the samples: UAC bypass (Sysmon_UACME_22), lsass access.
RULE_GLOBS = ("windows/process_creation/proc_creation_win_uac*.yml", "windows/process_access/*.yml")


@dataclass
class Served:
    base: str
    case_id: int
    empty_case_id: int
    shots: Path
    docs: Path | None


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, attack_samples: Path, sigma_dir: Path
) -> Iterator[Served]:
    """A case with the samples (and an NDJSON file of attacker-controlled values), and an
    empty case."""
    root = tmp_path_factory.mktemp("workbench")
    env = serve_env(root / "home")
    rules = root / "rules"
    rules.mkdir()
    for pattern in RULE_GLOBS:
        for rule in (sigma_dir / "rules").glob(pattern):
            shutil.copy(rule, rules / rule.name)
    cli(env, "rules", "import", str(rules), "--name", "sigmahq")
    create_admin(env)
    paths = [
        *(attack_samples / s for s in (*SAMPLES, *MORE_SAMPLES)),
        xss_ndjson(root / "xss.ndjson"),
    ]
    with serve(env) as base:
        with api_client(base) as http:
            case_id = http.post("/api/cases", json={"name": "workbench"}).json()["id"]
            empty_id = http.post("/api/cases", json={"name": "empty case"}).json()["id"]
            upload_searchable(http, case_id, paths)
        docs = os.environ.get("CASESCOPE_DOCS_IMG")
        shots = artifacts_dir(root / "artifacts")
        yield Served(base, case_id, empty_id, shots, Path(docs) if docs else None)


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


def _search(served: Served, page, query: str = "") -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{served.base}/cases/{served.case_id}/search?q={query}")
    page.wait_for_selector("#timeline[data-ready='1']")
    page.wait_for_selector("#fields[data-ready='1']")


def _count(page) -> int:  # type: ignore[no-untyped-def]
    text = page.inner_text("#result-count")
    return int(re.match(r"([\d,]+)", text).group(1).replace(",", ""))


def _params(page) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    return parse_qs(urlsplit(page.url).query)


def test_brush_zooms_and_a_bar_narrows(served: Served, page) -> None:  # type: ignore[no-untyped-def]
    _search(served, page, "EventID:1")
    everything = _count(page)
    page.locator("#timeline").scroll_into_view_if_needed()
    _shot(served, page, "search-timeline", doc=True)
    box = page.locator("#timeline-chart svg .overlay").bounding_box()
    bars = page.locator("#timeline-chart svg rect.bar")
    assert bars.count() >= 2
    first = bars.nth(0).bounding_box()
    # drag from the left edge to just past the first bar: a range holding that bar only
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 1, y)
    page.mouse.down()
    page.mouse.move(first["x"] + first["width"] + 2, y, steps=5)
    with page.expect_navigation():  # the old page's timeline is ready too
        page.mouse.up()
    page.wait_for_selector("#timeline[data-ready='1']")
    zoomed = _params(page)
    assert zoomed["start"] and zoomed["end"] and zoomed["q"] == ["EventID:1"]
    assert zoomed["start"][0] < zoomed["end"][0]
    narrowed = _count(page)
    assert 0 < narrowed < everything
    assert "Showing" in page.inner_text("#timeline")
    _shot(served, page, "search-timeline-zoomed")
    # click the highest bar of the zoomed timeline: the range becomes its bucket
    bar = page.locator("#timeline-chart svg rect.bar").first
    counted = re.search(r": ([\d,]+) events", bar.locator("title").text_content()).group(1)
    bar_box = bar.bounding_box()
    with page.expect_navigation():
        page.mouse.click(bar_box["x"] + bar_box["width"] / 2, bar_box["y"] + bar_box["height"] - 2)
    page.wait_for_selector("#timeline[data-ready='1']")
    assert _params(page)["start"] != zoomed["start"] or _params(page)["end"] != zoomed["end"]
    assert _count(page) == int(counted.replace(",", ""))
    rows = page.locator("#timeline-table tbody tr")
    assert rows.count() >= 1  # the counts, as a table


def test_sidebar_filter_for_and_out_makes_removable_pills(served: Served, page) -> None:  # type: ignore[no-untyped-def]
    _search(served, page)
    everything = _count(page)
    computer = page.locator("#field-list details.field[data-field='computer']")
    computer.locator(".facet-values li").first.wait_for()
    value = computer.locator("button.pv").first
    host = value.inner_text()
    per_host = int(computer.locator(".facet-values li .count").first.inner_text().replace(",", ""))
    value.click()
    page.wait_for_selector("#pivot-menu:not([hidden])")
    _shot(served, page, "search-pivot-menu", doc=True)
    submit(page, "#pivot-for")
    page.wait_for_selector("#pills .pill")
    assert _params(page)["filter"] == [f"computer:{host}"] or host in _params(page)["filter"][0]
    assert _count(page) == per_host < everything
    assert host in page.inner_text("#pills")
    _shot(served, page, "search-pill", doc=True)
    submit(page, "#pills .pill-remove")  # the old page has a #result-count too
    page.wait_for_selector("#result-count")
    assert "filter" not in _params(page) and _count(page) == everything
    # filter out, from an event field of the sidebar
    page.wait_for_selector("#fields[data-ready='1']")
    field = page.locator("#field-list details.field[data-source='field']").first
    field.locator("summary").click()
    field.locator(".facet-values li").first.wait_for()
    field_value_count = int(
        field.locator(".facet-values li .count").first.inner_text().replace(",", "")
    )
    field.locator("button.pv").first.click()
    submit(page, "#pivot-out")
    page.wait_for_selector("#pills .pill.negated")
    assert _params(page)["filter"][0].startswith("NOT ")
    assert _count(page) == everything - field_value_count


def test_rows_show_a_detection_badge_with_level_and_technique(served: Served, page) -> None:  # type: ignore[no-untyped-def]
    _search(served, page, "consent")
    badge = page.locator("#results a.badge.level-high").first
    badge.wait_for()
    assert "UAC Bypass" in badge.inner_text() and "T1548.002" in badge.inner_text()
    # the level's colour wins over the badge's own (one palette: .level-high)
    assert badge.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(192, 57, 43)"
    assert page.locator("#results td.summary b", has_text="CommandLine").count() > 0
    assert page.locator("#results mark", has_text="consent").count() > 0
    badge.scroll_into_view_if_needed()
    _shot(served, page, "search-rows", doc=True)


#: Where each part of a result row lies, in the page at 1366x768 (the sidebar beside it).
ROW_LAYOUT = """() => {
  const box = e => e.getBoundingClientRect();
  const rows = [...document.querySelectorAll('#results tbody tr')];
  // the button beside the time with a gap, or under it
  const apart = (a, b) => b.left >= a.right + 2 || b.top >= a.bottom;
  const cell = rows[0].querySelector('td.computer');
  const style = getComputedStyle(cell);
  const pen = document.createElement('canvas').getContext('2d');
  pen.font = `${style.fontSize} ${style.fontFamily}`;
  const inner = cell.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return {
    page: document.documentElement.scrollWidth,
    viewport: window.innerWidth,
    table: box(document.querySelector('#results')).right,
    rows: rows.length,
    crowded: rows.filter(r => !apart(box(r.querySelector('a.event-link')),
                                     box(r.querySelector('button.story-add')))).length,
    // a host name such as PC01.example.corp fits the computer column on one line
    computer_room: inner - pen.measureText('PC01.example.corp').width,
  };
}"""


def test_a_result_row_fits_the_screen_and_its_parts_do_not_overlap(served: Served, page) -> None:  # type: ignore[no-untyped-def]
    _search(served, page)
    layout = page.evaluate(ROW_LAYOUT)
    assert layout["rows"] == 50, layout
    assert layout["page"] <= layout["viewport"] and layout["table"] <= layout["viewport"], layout
    assert layout["crowded"] == 0 and layout["computer_room"] >= 0, layout


def test_the_query_box_completes_field_names(served: Served, page) -> None:  # type: ignore[no-untyped-def]
    _search(served, page)
    page.click("#q")
    page.keyboard.type("EventID:1 AND Comm")
    page.wait_for_selector("#q-suggest:not([hidden]) li:has-text('CommandLine')")
    assert "EventID" not in page.inner_text("#q-suggest")  # names that start "Comm" only
    _shot(served, page, "search-completion")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert page.input_value("#q") == "EventID:1 AND CommandLine:"


def test_paging_next_and_previous(served: Served, page) -> None:  # type: ignore[no-untyped-def]
    _search(served, page)
    total = _count(page)
    assert total > 50
    first_rows = page.locator("a.event-link").all_inner_texts()
    assert "events 1–50" in page.inner_text("#pager-top")
    submit(page, "#pager-top a.next-page")  # the old page has a #pager-top too
    page.wait_for_selector("#pager-top")
    assert f"events 51–{total}" in page.inner_text("#pager-top")
    assert page.locator("a.event-link").count() == total - 50
    submit(page, "#pager-top a.prev-page")
    page.wait_for_selector("#pager-top")
    assert "events 1–50" in page.inner_text("#pager-top")
    assert page.locator("a.event-link").all_inner_texts() == first_rows


def test_an_empty_case_and_an_empty_search_show_first_steps(served: Served, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{served.base}/cases/{served.empty_case_id}/search")
    assert page.is_visible("#empty-case")
    assert page.is_visible("#first-steps a[href='/help/query-language']")
    page.goto(f"{served.base}/cases/{served.empty_case_id}")
    assert page.is_visible("#empty-case")
    page.goto(f"{served.base}/cases/{served.case_id}/search")
    _shot(served, page, "search-first-steps", doc=True)
    submit(page, "#first-steps a:has-text('EventID:1')")
    page.wait_for_selector("#result-count")
    assert _params(page)["q"] == ["EventID:1"] and _count(page) > 0
    page.goto(f"{served.base}/help/query-language")
    assert page.locator("code.example").count() >= 15


def test_the_dashboard_timeline_opens_a_search(served: Served, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{served.base}/cases/{served.case_id}")
    page.wait_for_selector("#timeline[data-ready='1']")
    _shot(served, page, "dashboard-timeline", doc=True)
    assert "UTC" in page.inner_text("#timeline-chart")
    bar = page.locator("#timeline-chart svg rect.bar").first
    box = bar.bounding_box()
    with page.expect_navigation():
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] - 2)
    page.wait_for_selector("#result-count")
    params = _params(page)
    assert urlsplit(page.url).path.endswith("/search") and params["start"] and params["end"]


def test_hostile_values_stay_text_in_the_sidebar_the_menu_and_the_rows(
    served: Served,
    page,  # type: ignore[no-untyped-def]
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{served.base}/cases/{served.case_id}/search?q=_exists_:Message&columns=Message")
    page.wait_for_selector("#fields[data-ready='1']")
    field = page.locator("#field-list details.field[data-field='Message']")
    field.locator("summary").click()
    value = field.locator("button.pv", has_text=XSS)
    value.wait_for()
    assert value.inner_text() == XSS
    value.click()
    assert XSS in page.inner_text("#pivot-what")
    page.click("#pivot-for")
    page.wait_for_selector("#pills .pill")
    assert XSS in page.inner_text("#pills") and _count(page) == 1
    assert XSS in page.inner_text("#results")
    for area in ("#field-list", "#results", "#pills", "#pivot-menu", "#timeline"):
        assert page.locator(f"{area} img").count() == 0
    assert dialogs == []

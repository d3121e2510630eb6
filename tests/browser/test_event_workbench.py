"""The event workbench in real headless Chromium (Debian `chromium`, driven by Playwright),
against a real `casescope serve` with three real Sigma rules and real attack samples.

From a search to an event (field table, matched rule with level and ATT&CK technique, a
pivot that lands on a filtered search), its context and previous/next, the process tree of
the PowerShell that ran mimikatz in the babyshark sample (and a child's parent), and a logon
session from a 4624. Screenshots at 1366×768 go to `$CASESCOPE_ARTIFACTS` (else the test's
tmp folder).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
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

pytestmark = NEEDS_BROWSER

SAMPLES = (
    "Credential Access/babyshark_mimikatz_powershell.evtx",
    "Credential Access/sysmon_10_lsass_mimikatz_sekurlsa_logonpasswords.evtx",
    "Privilege Escalation/NTLM2SelfRelay-med0x2e-security_4624_4688.evtx",
)
RULES = (
    "process_creation/proc_creation_win_powershell_non_interactive_execution.yml",
    "process_creation/proc_creation_win_susp_local_system_owner_account_discovery.yml",
    "process_access/proc_access_win_hktl_generic_access.yml",
)
MIMIKATZ_PS = "EventID:1 AND Image:*\\powershell.exe AND CommandLine:Powershell"


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, attack_samples: Path, sigma_dir: Path
) -> Iterator[tuple[str, int]]:
    """The server's base URL and the case the samples are in."""
    home = tmp_path_factory.mktemp("workbench")
    rules = home / "rules-in"
    rules.mkdir()
    for rule in RULES:
        shutil.copy(sigma_dir / "rules" / "windows" / rule, rules / Path(rule).name)
    env = serve_env(home / "home")
    create_admin(env)
    cli(env, "rules", "import", str(rules), "--name", "workbench")
    with serve(env) as base:
        with api_client(base) as http:
            case_id = http.post("/api/cases", json={"name": "workbench"}).json()["id"]
            upload_searchable(http, case_id, [attack_samples / s for s in SAMPLES])
        yield base, case_id


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return artifacts_dir(tmp_path_factory.mktemp("screenshots"))


@pytest.fixture
def page(browser: Any, served: tuple[str, int]) -> Iterator:  # type: ignore[type-arg]
    """A logged-in page; fails the test on any console error (a CSP violation included)
    or failed request."""
    base, _ = served
    with chromium_page(browser) as tab:
        errors: list[str] = []
        tab.on(
            "console",
            lambda m: (
                errors.append(m.text)
                if m.type == "error" and "Failed to load resource" not in m.text
                else None
            ),
        )
        tab.on(  # a missing favicon is the browser's guess, not a page's link
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


def _scroll_to(page, element_id: str) -> None:  # type: ignore[no-untyped-def]
    page.locator(f"#{element_id}").evaluate("e => e.scrollIntoView()")


def _search(page, base: str, case_id: int, query: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/cases/{case_id}/search")
    page.fill("#search-form input[name=q]", query)
    submit(page, "#search-form button[type=submit]")
    assert "matching event" in page.inner_text("#result-count")


def test_event_page_rules_pivot_context_and_neighbours(
    page, served: tuple[str, int], artifacts: Path
) -> None:  # type: ignore[no-untyped-def]
    base, case_id = served
    _search(page, base, case_id, "EventID:1")
    submit(page, "a.event-link >> nth=4")  # the fifth process creation: it has both neighbours
    here = page.url
    assert "q=EventID%3A1" in here
    submit(page, "#next-event")
    assert page.url != here and "q=EventID%3A1" in page.url
    submit(page, "#previous-event")
    assert page.url == here
    submit(page, "#back-to-search")
    assert page.input_value("#search-form input[name=q]") == "EventID:1"

    _search(page, base, case_id, MIMIKATZ_PS)
    submit(page, "a.event-link >> nth=0")
    fields = page.inner_text("#event-fields")
    assert "CommandLine" in fields and "C:\\Windows\\System32\\cmd.exe" in fields
    rule = page.locator("#rules article").first
    assert "Non Interactive PowerShell Process Spawned" in rule.inner_text()
    assert rule.locator(".badge.level-low").inner_text() == "low"
    assert rule.locator(".tag.technique").inner_text() == "T1059.001"
    page.screenshot(path=str(artifacts / "event-page.png"))
    rule.locator("details.logic summary").click()
    assert "condition:" in rule.locator("details.logic pre").inner_text()
    page.screenshot(path=str(artifacts / "event-rule-logic.png"))
    _scroll_to(page, "event-fields")
    page.screenshot(path=str(artifacts / "event-fields.png"))
    assert page.locator("#context-events tr.here").count() == 1
    _scroll_to(page, "context")
    page.screenshot(path=str(artifacts / "event-context.png"))

    row = page.locator("#event-fields tr", has=page.locator("th", has_text="ParentImage"))
    with page.expect_navigation():
        row.locator("a.pivot-for").click()
    params = parse_qs(urlsplit(page.url).query)
    assert params["q"] == [MIMIKATZ_PS]  # the search it came from, narrowed by one pill
    assert params["filter"] == ['ParentImage:"C:\\Windows\\System32\\cmd.exe"']
    assert page.input_value("#search-form input[name=q]") == MIMIKATZ_PS
    assert "ParentImage" in page.inner_text("#pills")
    assert page.inner_text("#result-count").startswith("1 matching")
    page.screenshot(path=str(artifacts / "pivot-search.png"))


def test_process_tree_of_mimikatz_powershell_and_its_parent(
    page, served: tuple[str, int], artifacts: Path
) -> None:  # type: ignore[no-untyped-def]
    base, case_id = served
    _search(page, base, case_id, MIMIKATZ_PS)
    submit(page, "a.event-link >> nth=0")
    submit(page, "#process-tree-link")
    tree = page.locator("#process-tree")
    focus = tree.locator("li.proc.focus")
    assert focus.locator(".image").first.inner_text() == "powershell.exe"
    parent = tree.locator("li.proc").first  # the root: cmd.exe, named by the child only
    assert parent.locator(".image").first.inner_text() == "cmd.exe"
    assert "inferred" in parent.locator(".proc-line").first.inner_text()
    children = focus.locator("ul > li.proc .image")
    assert children.all_inner_texts() == ["whoami.exe", "whoami.exe"]
    assert focus.locator(".proc-line .badge.level-low").first.is_visible()
    assert page.locator("#activity-events tbody tr").count() >= 10
    page.screenshot(path=str(artifacts / "process-tree.png"))

    with page.expect_navigation():
        focus.locator("ul > li.proc a.node-tree").first.click()  # a whoami's own tree
    tree = page.locator("#process-tree")
    assert tree.locator("li.proc.focus .image").first.inner_text() == "whoami.exe"
    parent = tree.locator("li.proc", has=page.locator("li.proc.focus")).last
    assert parent.locator(".image").first.inner_text() == "powershell.exe"
    assert "inferred" not in parent.locator(".proc-line").first.inner_text()
    page.screenshot(path=str(artifacts / "process-tree-child.png"))


def test_logon_session_from_a_4624(page, served: tuple[str, int], artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    base, case_id = served
    _search(page, base, case_id, "EventID:4624 AND TargetLogonId:0x821aab")
    submit(page, "a.event-link >> nth=0")
    submit(page, "a.session-link:has-text('0x821aab')")
    facts = page.inner_text("#session-facts")
    assert "Administrator" in facts and "192.168.1.219" in facts
    assert "3 (Network)" in facts and "no logoff" not in facts
    assert re.search(r"yes \(4672", facts)
    events = page.locator("#session-events tbody tr")
    assert events.count() == 3
    page.screenshot(path=str(artifacts / "logon-session.png"))

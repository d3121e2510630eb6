"""The event workbench in real headless Chromium (Debian `chromium`, driven by Playwright),
against a real `casescope serve` with three real Sigma rules and real attack samples.

From a search to an event (field table, matched rule with level and ATT&CK technique, a
pivot that lands on a filtered search), its context and previous/next, the process tree of
the PowerShell that ran mimikatz in the babyshark sample (and a child's parent), and a logon
session from a 4624. Screenshots at 1366×768 go to `$CASESCOPE_ARTIFACTS` (else the test's
tmp folder).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from tests.browser.test_flow import CHROMIUM, PASSWORD, _free_port

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
VIEWPORT = {"width": 1366, "height": 768}


def _cli(env: dict[str, str], *args: str, stdin: str = "") -> None:
    subprocess.run(
        [sys.executable, "-m", "casescope", *args],
        input=stdin,
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )


def _upload(base: str, attack_samples: Path) -> int:
    """Log in, create the case and upload the samples through the API; the case id."""
    with httpx2.Client(base_url=base, timeout=120) as client:
        login = client.post("/api/login", json={"username": "admin", "password": PASSWORD})
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        # the session cookie is Secure: httpx keeps it from plain http, a browser on
        # 127.0.0.1 does not, so it is sent by hand
        session = login.headers["set-cookie"].split(";", 1)[0]
        client.headers["Cookie"] = session
        case_id = client.post("/api/cases", json={"name": "workbench"}).json()["id"]
        files = [("files", (Path(s).name, (attack_samples / s).read_bytes())) for s in SAMPLES]
        body = client.post(f"/api/cases/{case_id}/files/upload", files=files).json()
        deadline = time.monotonic() + 240
        url = f"/api/cases/{case_id}/progress?first_id={body['first_id']}&last_id={body['last_id']}"
        while not client.get(url).json()["searchable"]:
            assert time.monotonic() < deadline, "the samples did not become searchable"
            time.sleep(0.5)
    return case_id


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, attack_samples: Path, sigma_dir: Path
) -> Iterator[tuple[str, int]]:
    if CHROMIUM is None:
        pytest.skip("Debian chromium is not installed (run scripts/browser.sh)")
    pytest.importorskip("playwright.sync_api", reason="run scripts/browser.sh")
    home = tmp_path_factory.mktemp("workbench")
    rules = home / "rules-in"
    rules.mkdir()
    for rule in RULES:
        shutil.copy(sigma_dir / "rules" / "windows" / rule, rules / Path(rule).name)
    env = {
        **os.environ,
        "CASESCOPE_HOME": str(home / "home"),
        "CASESCOPE_SECRET_KEY": secrets.token_urlsafe(48),
        "CASESCOPE_WORKERS": "2",
        "CASESCOPE_HEARTBEAT_SECONDS": "0.5",
        "CASESCOPE_LEASE_SECONDS": "5",
    }
    _cli(env, "user", "create", "admin", "--admin", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    _cli(env, "rules", "import", str(rules), "--name", "workbench")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "casescope", "serve", "--port", str(port)], env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx2.get(f"{base}/health").status_code == 200:
                    break
            except httpx2.TransportError:
                time.sleep(0.3)
        yield base, _upload(base, attack_samples)
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("CASESCOPE_ARTIFACTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def page(served: tuple[str, int]) -> Iterator:  # type: ignore[type-arg]
    """A logged-in page; fails the test on any console error (a CSP violation included)
    or failed request."""
    from playwright.sync_api import sync_playwright

    base, _ = served
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        tab = browser.new_page(viewport=VIEWPORT)
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
        tab.goto(f"{base}/login")
        tab.fill("input[name=username]", "admin")
        tab.fill("input[name=password]", PASSWORD)
        tab.click("button[type=submit]")
        yield tab
        assert not errors, errors
        browser.close()


def _scroll_to(page, element_id: str) -> None:  # type: ignore[no-untyped-def]
    page.locator(f"#{element_id}").evaluate("e => e.scrollIntoView()")


def _search(page, base: str, case_id: int, query: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/cases/{case_id}/search")
    page.fill("#search-form input[name=q]", query)
    page.click("#search-form button[type=submit]")
    assert "matching events" in page.inner_text("#result-count")


def test_event_page_rules_pivot_context_and_neighbours(
    page, served: tuple[str, int], artifacts: Path
) -> None:  # type: ignore[no-untyped-def]
    base, case_id = served
    _search(page, base, case_id, "EventID:1")
    page.click("a.event-link >> nth=4")  # the fifth process creation: it has both neighbours
    here = page.url
    assert "q=EventID%3A1" in here
    page.click("#next-event")
    assert page.url != here and "q=EventID%3A1" in page.url
    page.click("#previous-event")
    assert page.url == here
    page.click("#back-to-search")
    assert page.input_value("#search-form input[name=q]") == "EventID:1"

    _search(page, base, case_id, MIMIKATZ_PS)
    page.click("a.event-link >> nth=0")
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
    page.click("a.event-link >> nth=0")
    page.click("#process-tree-link")
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
    page.click("a.event-link >> nth=0")
    page.click("a.session-link:has-text('0x821aab')")
    facts = page.inner_text("#session-facts")
    assert "Administrator" in facts and "192.168.1.219" in facts
    assert "3 (Network)" in facts and "no logoff" not in facts
    assert re.search(r"yes \(4672", facts)
    events = page.locator("#session-events tbody tr")
    assert events.count() == 3
    page.screenshot(path=str(artifacts / "logon-session.png"))

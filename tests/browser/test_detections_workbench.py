"""Detections as analysts read them, in real headless Chromium at 1366x768: the ATT&CK matrix
of SigmaHQ rules firing on the attack samples, a technique's rules, a rule's logic and hits,
the detection timeline, the Navigator layer; hostile values stay inert.

The case is prepared with the CLI (rules import, ingest) before `casescope serve` starts, so
the browser only reads. Screenshots go to `$CASESCOPE_ARTIFACTS` (or the test's tmp dir).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from tests.browser.support import (
    NEEDS_BROWSER,
    artifacts_dir,
    chromium_page,
    cli,
    create_admin,
    log_in,
    serve,
    serve_env,
)

pytestmark = NEEDS_BROWSER

SAMPLES = (
    "AutomatedTestingTools/PanacheSysmon_vs_AtomicRedTeam01.evtx",
    "Credential Access/sysmon_10_1_memdump_comsvcs_minidump.evtx",
    "Lateral Movement/LM_sysmon_psexec_smb_meterpreter.evtx",
    "Discovery/dicovery_4661_net_group_domain_admins_target.evtx",
)
XSS = "<img src=x onerror=alert(1)>"
HOSTILE_RULE = f"""\
    title: '{XSS} hostile rule'
    id: 7a1c0000-0000-4000-8000-0000000b0b0b
    status: experimental
    description: '{XSS} described'
    references: ['javascript:alert(2)']
    tags: [attack.execution, attack.t1059.007]
    logsource: {{product: windows}}
    detection:
      selection: {{Message|contains: 'onerror'}}
      condition: selection
    level: critical
    """
HOSTILE_EVENT = {"EventTime": "2024-05-01T10:00:00Z", "Hostname": XSS, "Message": XSS}


@dataclass
class Served:
    base: str
    case_id: int
    shots: Path


def _prepare(env: dict[str, str], root: Path, sigma_dir: Path, attack_samples: Path) -> None:
    rules = root / "rules"
    windows = sigma_dir / "rules" / "windows"
    shutil.copytree(windows / "process_creation", rules / "process_creation")
    shutil.copytree(windows / "builtin" / "security", rules / "security")
    (rules / "hostile.yml").write_text(dedent(HOSTILE_RULE))
    hostile = root / "hostile.ndjson"
    hostile.write_text(json.dumps(HOSTILE_EVENT) + "\n")
    files = [str(attack_samples / s) for s in SAMPLES] + [str(hostile)]
    create_admin(env)
    cli(env, "rules", "import", str(rules), "--name", "sigmahq")
    cli(env, "ingest", "--case", "workbench", *files, timeout=600)


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, sigma_dir: Path, attack_samples: Path
) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("workbench")
    env = serve_env(root / "home")
    _prepare(env, root, sigma_dir, attack_samples)
    with serve(env) as base:
        yield Served(base, 1, artifacts_dir(root / "screenshots"))


@pytest.fixture(scope="module")
def page(browser: Any, served: Served):  # type: ignore[no-untyped-def]
    with chromium_page(browser, accept_downloads=True) as tab:
        tab.problems = []  # type: ignore[attr-defined]
        tab.on("dialog", lambda d: (tab.problems.append(f"dialog: {d.message}"), d.dismiss()))
        tab.on(
            "console",
            lambda m: tab.problems.append(m.text) if "Content Security Policy" in m.text else None,
        )
        log_in(tab, served.base)
        yield tab


def _shot(page, served: Served, name: str, full: bool = False) -> None:  # type: ignore[no-untyped-def]
    page.screenshot(path=str(served.shots / f"{name}.png"), full_page=full)


def test_matrix_technique_rule_and_its_hits(page, served: Served) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{served.base}/cases/{served.case_id}/detections")
    headings = page.locator("#attack-matrix .tactic h3").all_inner_texts()
    assert headings[:4] == ["Reconnaissance", "Resource Development", "Initial Access", "Execution"]
    assert page.is_visible("#attack-matrix")
    _shot(page, served, "detections-matrix")

    execution = page.locator("#attack-matrix .tactic[data-tactic=execution]")
    first = execution.locator("li.cell").first
    technique = first.get_attribute("data-technique")
    assert technique and technique.startswith("T")
    first.locator("a.count").click()
    page.wait_for_url(f"**technique={technique}**")
    assert f"{technique}" in page.inner_text("#attack-selection")
    assert page.locator(f"#attack-matrix li.cell.selected[data-technique='{technique}']").count()
    rows = page.locator("#detections tbody tr[data-rule]")
    assert rows.count() >= 1
    for text in rows.locator("td.attack").all_inner_texts():
        assert technique.split(".")[0] in text
    page.locator("#by-rule").scroll_into_view_if_needed()
    _shot(page, served, "detections-technique-rules")

    rows.first.locator("a.rule-link").click()
    page.wait_for_selector("#rule-detection")
    assert "condition:" in page.inner_text("#rule-detection")
    assert page.inner_text("#rule-level") in ("informational", "low", "medium", "high", "critical")
    hits = page.locator("#rule-hits tbody tr")
    assert hits.count() >= 1 and "No hits" not in hits.first.inner_text()
    assert page.inner_text("#rule-hits tbody tr td.summary >> nth=0").strip()
    _shot(page, served, "detections-rule", full=True)

    hits.first.locator("a.event-link").click()
    page.wait_for_url("**/events/**")
    assert not page.problems  # type: ignore[attr-defined]


def test_timeline_filtered_by_level(page, served: Served) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{served.base}/cases/{served.case_id}/detections")
    page.click("#timeline-link")
    page.wait_for_selector("#timeline tbody tr")
    times = page.locator("#timeline td.time").all_inner_texts()
    assert len(times) > 20 and times == sorted(times) and all(t.endswith("UTC") for t in times)
    _shot(page, served, "detections-timeline")
    page.select_option("#detection-filters select[name=level]", "high")
    page.click("#detection-filters button[type=submit]")
    page.wait_for_url("**level=high**")
    levels = set(page.locator("#timeline td .badge").all_inner_texts())
    assert levels and levels <= {"high", "critical"}
    assert all(s.strip() for s in page.locator("#timeline td.summary").all_inner_texts()[:20])
    assert not page.problems  # type: ignore[attr-defined]


def test_navigator_layer_download(page, served: Served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{served.base}/cases/{served.case_id}/detections")
    with page.expect_download() as download:
        page.click("#navigator-link")
    target = tmp_path / "layer.json"
    download.value.save_as(target)
    layer = json.loads(target.read_text())
    assert layer["versions"]["layer"] == "4.5" and layer["techniques"]


def test_hostile_rule_and_event_stay_inert(page, served: Served) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{served.base}/cases/{served.case_id}/detections?q=hostile")
    row = page.locator("#detections tbody tr[data-rule]")
    assert row.count() == 1
    assert XSS in row.inner_text()  # shown as text
    assert page.locator("img[src=x]").count() == 0
    row.locator("a.rule-link").click()
    page.wait_for_selector("#rule-detection")
    assert page.locator("#rule-references a").count() == 0  # a javascript: reference: text
    assert XSS in page.inner_text("#rule-title") and page.locator("img[src=x]").count() == 0
    assert XSS in page.inner_text("#rule-hits")  # the event's computer and summary
    page.goto(f"{served.base}/cases/{served.case_id}/detections/timeline?technique=T1059.007")
    assert XSS in page.inner_text("#timeline") and page.locator("img[src=x]").count() == 0
    assert not page.problems  # type: ignore[attr-defined]

"""The detections case of tests/web/test_detections.py: SigmaHQ rules (process creation and
Security) and two hostile rules imported before four attack samples and a hostile NDJSON file
are uploaded; helpers that read its detections through the API and, as truth, the DB."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from casescope.model.tables import Detection, Rule
from tests.web.conftest import BIDI, JS_URL, XSS, Web, rule_folder

HOSTILE_UID = "7a1c0000-0000-4000-8000-00000000a55a"
SAMPLES = (
    "AutomatedTestingTools/PanacheSysmon_vs_AtomicRedTeam01.evtx",
    "Credential Access/ACL_ForcePwd_SPNAdd_User_Computer_Accounts.evtx",
    "Lateral Movement/LM_sysmon_psexec_smb_meterpreter.evtx",
    "Discovery/dicovery_4661_net_group_domain_admins_target.evtx",
)
HOSTILE_RULES = {
    "xss.yml": f"""\
        title: '{XSS} hostile title'
        id: 7a1c0000-0000-4000-8000-00000000a55a
        status: experimental
        description: '{XSS} described {BIDI}'
        author: '{XSS}'
        references:
          - '{JS_URL}'
          - https://example.com/ref
        tags: [attack.execution, attack.t1059.007, attack.g0016, cve.2021-1234]
        logsource: {{product: windows}}
        detection:
          selection: {{Message|contains: 'onerror'}}
          condition: selection
        level: critical
        """,
    "unmapped.yml": """\
        title: Hostile file seen
        id: 7a1c0000-0000-4000-8000-00000000b00b
        status: test
        logsource: {product: windows}
        detection:
          selection: {Note|contains: 'byte'}
          condition: selection
        level: low
        """,
}


def rules_folder(sigma_dir: Path, folder: Path) -> Path:
    windows = sigma_dir / "rules" / "windows"
    shutil.copytree(windows / "process_creation", folder / "process_creation")
    shutil.copytree(windows / "builtin" / "security", folder / "security")
    return rule_folder(folder, HOSTILE_RULES)


def hostile_ndjson(path: Path) -> Path:
    record = {
        "EventTime": "2024-05-01T10:00:00Z",
        "Hostname": XSS,
        "EventID": 1,
        "Message": XSS,
        "Url": JS_URL,
        "FileName": BIDI,
        "Note": "nul\x00byte",
    }
    path.write_text(json.dumps(record) + "\n")
    return path


def api(det: Web, tail: str = "") -> str:
    return f"/api/cases/{det.case_id}/detections{tail}"


def get_json(client: TestClient, url: str, **params: object) -> dict:
    r = client.get(url, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def stored_detections(det: Web) -> list[tuple]:
    """Every detection of the case from the DB: (rule uid, level, status, tags, computer,
    ts, file id, seq)."""
    with det.db.read() as session:
        return list(
            session.execute(
                select(
                    Rule.rule_uid,
                    Rule.level,
                    Rule.status,
                    Rule.tags,
                    Detection.computer,
                    Detection.ts,
                    Detection.file_id,
                    Detection.seq,
                )
                .join(Rule, Rule.id == Detection.rule_id)
                .where(Detection.case_id == det.case_id)
            )
        )


def all_rules(det: Web, client: TestClient, **params: object) -> list[dict]:
    page = get_json(client, api(det), **params)
    rules, offset = page["rules"], 0
    while len(rules) < page["total_rules"]:
        offset += 100
        rules += get_json(client, api(det), offset=offset, **params)["rules"]
    return rules

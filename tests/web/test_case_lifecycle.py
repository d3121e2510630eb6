"""Case settings (rename, describe, owner, open/closed: a closed case is read-only) and case
deletion, which removes every row, event and file of one case and nothing of any other.

One app, two cases that share an evidence file (same bytes), with a Sigma rule, an IOC, a
mark and a saved search in each: deleting one case must leave the other exactly as it was.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from casescope.model.enums import JobState, Operation, OperationKind
from casescope.model.tables import Base, Case, DeletedCase, EvidenceFile, Job, Segment
from casescope.services import operations as ops
from casescope.store.rulesets import import_rules
from casescope.web.api.case_settings import CaseSettingsOut
from tests.web.conftest import SAMPLES, XSS, Web, open_web, rule_folder, sample_uploads

SHARED = SAMPLES[0]  # in both cases
ONLY_B = "Privilege Escalation/Sysmon_UACME_22.evtx"
RULES = {
    "service.yml": """\
        title: Service installed
        id: 5a8b4c1e-0000-4000-8000-000000000025
        status: test
        logsource: {product: windows}
        detection:
          selection: {EventID: 7045}
          condition: selection
        level: high
        """,
}


def _wait_idle(client: TestClient, case_id: int) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ops = client.get(f"/api/cases/{case_id}/operations").json()
        if all(op["finished"] for op in ops):
            return
        time.sleep(0.3)
    raise AssertionError(f"operations of case {case_id} did not finish")


def _furnish(client: TestClient, case_id: int) -> None:
    """An IOC with hits, a starred event and a saved search in the case."""
    page = client.get(f"/api/cases/{case_id}/events", params={"q": "EventID:7045"}).json()
    event = page["rows"][0]
    value = event["fields"].get("ServiceName") or event["computer"]
    r = client.post(f"/api/cases/{case_id}/iocs", json={"values": [value], "type": "string"})
    assert r.status_code == 200, r.text
    mark = f"/api/cases/{case_id}/events/{event['file_id']}/{event['seq']}/marks"
    assert client.post(mark, json={"kind": "star"}).status_code == 200
    r = client.post(f"/api/cases/{case_id}/saved-searches", json={"name": "s", "params": {"q": ""}})
    assert r.status_code in (200, 201), r.text
    _wait_idle(client, case_id)


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory, attack_samples: Path) -> Iterator[Web]:
    home = tmp_path_factory.mktemp("lifecycle")

    def prepare(web: Web) -> None:
        import_rules(web.db, web.settings, rule_folder(home / "rules", RULES), "test")

    files = sample_uploads(attack_samples, SAMPLES[:2])
    with open_web(home, files, case_name="case A", prepare=prepare) as web:
        admin = web.clients["admin"]
        b = admin.post("/api/cases", json={"name": "case B"}).json()["id"]
        upload = [("files", f) for f in sample_uploads(attack_samples, (SHARED, ONLY_B))]
        assert admin.post(f"/api/cases/{b}/files/upload", files=upload).status_code == 200
        admin.post(f"/api/users/reader/cases/{b}")
        _wait_idle(admin, b)
        _furnish(web.clients["analyst"], web.case_id)
        _furnish(admin, b)
        web.other_case = b  # type: ignore[attr-defined]
        yield web


def _settings(web: Web, role: str, case_id: int | None = None) -> CaseSettingsOut:
    r = web.clients[role].get(f"/api/cases/{case_id or web.case_id}/settings")
    assert r.status_code == 200, r.text
    return CaseSettingsOut.model_validate(r.json())


def test_settings_show_the_owner_and_who_may_change_them(two: Web) -> None:
    seen = _settings(two, "analyst")
    assert (seen.name, seen.status, seen.owner, seen.can_manage) == (
        "case A",
        "open",
        "analyst",
        True,
    )
    assert seen.files == 2 and seen.events > 0
    assert _settings(two, "reader").can_manage is False
    assert two.clients["outsider"].get(f"/api/cases/{two.case_id}/settings").status_code == 403


def test_only_an_admin_or_the_owner_changes_settings(two: Web) -> None:
    url = f"/api/cases/{two.case_id}/settings"
    for role in ("reader", "outsider"):
        assert two.clients[role].patch(url, json={"description": "x"}).status_code == 403
    # the admin's case B: the analyst may open it (no grant: 403) but is not its owner
    b_url = f"/api/cases/{two.other_case}/settings"  # type: ignore[attr-defined]
    assert two.clients["reader"].patch(b_url, json={"description": "x"}).status_code == 403
    r = two.clients["analyst"].patch(url, json={"description": XSS, "name": "case A "})
    assert r.status_code == 200 and r.json()["description"] == XSS
    assert r.json()["name"] == "case A"  # stripped: nothing changed


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"name": "case B"}, 400, "already exists"),
        ({"name": "   "}, 400, "needs a name"),
        ({"name": "x" * 201}, 422, ""),
        ({"status": "archived"}, 422, ""),
        ({"owner": "nobody-such"}, 400, "no user named"),
        ({"description": "x" * 10_001}, 422, ""),
    ],
)
def test_bad_settings_are_refused(two: Web, body: dict, status: int, says: str) -> None:
    r = two.clients["admin"].patch(f"/api/cases/{two.case_id}/settings", json=body)
    assert r.status_code == status and says in r.text
    assert _settings(two, "admin").name == "case A"


def test_rename_and_owner_are_audited(two: Web) -> None:
    admin = two.clients["admin"]
    url = f"/api/cases/{two.case_id}/settings"
    assert admin.patch(url, json={"name": "case A2", "owner": "admin"}).json()["owner"] == "admin"
    assert _settings(two, "analyst").can_manage is False  # no longer the owner
    assert admin.patch(url, json={"name": "case A", "owner": "analyst"}).status_code == 200
    rows = admin.get("/api/audit", params={"case_id": two.case_id, "limit": 50}).json()
    details = [row["detail"] for row in rows if row["action"] == "case.update"]
    assert "name: case A -> case A2" in details and "owner: admin" in details


@contextmanager
def _job_of(web: Web, case_id: int, state: JobState) -> Iterator[None]:
    """A job of the case's first file in `state` for the block (a worker's lease that does
    not run out: nothing claims or rescues it)."""
    with web.db.session() as session:
        file_id = session.scalar(select(EvidenceFile.id).where(EvidenceFile.case_id == case_id))
        job = Job(
            file_id=file_id,
            operation=Operation.REINDEX,
            state=state,
            worker_id="test",
            lease_until=time.time() + 3600,
        )
        session.add(job)
    try:
        yield
    finally:
        with web.db.session() as session:
            session.execute(delete(Job).where(Job.id == job.id))


def test_a_cancelled_job_whose_file_has_an_outcome_offers_no_retry(two: Web) -> None:
    """A cancelled re-process of a completed file: counted once, as cancelled; the file is
    completed again, so the Jobs page offers no retry (only failed or cancelled files)."""
    operation_id = ops.create_operation(two.db, two.case_id, OperationKind.REINDEX, "test")
    with two.db.session() as session:
        file_id = session.scalar(select(EvidenceFile.id).where(EvidenceFile.case_id == two.case_id))
        session.add(
            Job(
                file_id=file_id,
                operation=Operation.REINDEX,
                state=JobState.PAUSED,
                operation_id=operation_id,
            )
        )
    ops.seal_operation(two.db, operation_id)
    r = two.clients["analyst"].post(f"/api/cases/{two.case_id}/operations/{operation_id}/cancel")
    assert r.status_code == 200, r.text
    p = two.clients["reader"].get(f"/api/cases/{two.case_id}/operations/{operation_id}").json()
    assert (p["files_done"], p["files_cancelled"], p["files_retryable"]) == (0, 1, 0)
    page = two.clients["analyst"].get(f"/cases/{two.case_id}/jobs").text
    row = page.split(f'data-op="{operation_id}"', 1)[1].split("</tr>", 1)[0]
    assert "0 done, 0 failed, 1 cancelled, 0 paused (1/1 finished)" in row
    assert '<button type="submit" hidden>Retry failed</button>' in row
    assert 'data-confirm="Cancel operation' in row
    files = two.clients["reader"].get(f"/api/cases/{two.case_id}/files").json()
    assert {f["status"] for f in files if f["id"] == file_id} == {"completed"}


def test_a_case_with_work_in_progress_is_not_closed(two: Web) -> None:
    url = f"/api/cases/{two.case_id}/settings"
    with _job_of(two, two.case_id, JobState.PAUSED):
        r = two.clients["analyst"].patch(url, json={"status": "closed", "description": "d"})
        assert r.status_code == 409 and "cancel their jobs" in r.json()["detail"]
    assert _settings(two, "analyst").status == "open"  # all or nothing
    assert _settings(two, "analyst").description != "d"


def test_a_case_being_processed_is_not_deleted(two: Web) -> None:
    b = two.other_case  # type: ignore[attr-defined]
    with _job_of(two, b, JobState.RUNNING):
        r = two.clients["admin"].delete(f"/api/cases/{b}", params={"confirm": "case B"})
        assert r.status_code == 409 and "being processed" in r.json()["detail"]
    assert two.clients["admin"].get(f"/api/cases/{b}").status_code == 200


def test_a_closed_case_is_read_only_until_reopened(two: Web, attack_samples: Path) -> None:
    analyst = two.clients["analyst"]
    base = f"/api/cases/{two.case_id}"
    r = analyst.patch(f"{base}/settings", json={"status": "closed"})
    assert r.status_code == 200 and r.json()["status"] == "closed"
    event = analyst.get(f"{base}/events").json()["rows"][0]
    mark = f"{base}/events/{event['file_id']}/{event['seq']}/marks"
    writes = [
        ("post", f"{base}/files/upload", {"files": [("files", ("a.ndjson", b"{}\n"))]}),
        ("post", mark, {"json": {"kind": "star"}}),
        ("post", f"{base}/iocs", {"json": {"values": ["10.1.2.3"]}}),
        ("post", f"{base}/files/reprocess", {"json": {"operation": "sigma_only"}}),
        ("post", f"{base}/exclusions", {"json": {"rule_uid": "any"}}),
    ]
    for method, url, kwargs in writes:
        r = getattr(analyst, method)(url, **kwargs)
        assert r.status_code == 409 and "closed and read-only" in r.json()["detail"], (url, r.text)
    page = analyst.post(
        f"/cases/{two.case_id}/evidence/reprocess",
        data={"csrf_token": analyst.headers["X-CSRF-Token"], "operation": "sigma_only"},
    )
    assert page.status_code == 409
    listed = {c["id"]: c["status"] for c in analyst.get("/api/cases").json()}
    assert listed[two.case_id] == "closed"
    assert 'class="case-status status-closed">closed<' in analyst.get("/").text
    evidence = analyst.get(f"/cases/{two.case_id}/evidence").text
    assert 'id="case-closed"' in evidence and 'id="upload-form"' not in evidence
    assert analyst.get(f"{base}/events").status_code == 200  # reading goes on
    assert analyst.get(f"{base}/files").status_code == 200
    r = analyst.patch(f"{base}/settings", json={"status": "open"})
    assert r.status_code == 200 and r.json()["status"] == "open"
    assert analyst.post(mark, json={"kind": "tag", "label": "reopened"}).status_code == 200
    rows = two.clients["admin"].get("/api/audit", params={"case_id": two.case_id}).json()
    assert {"case.close", "case.reopen"} <= {row["action"] for row in rows}


def test_the_settings_page_by_role(two: Web) -> None:
    url = f"/cases/{two.case_id}/settings"
    admin = two.clients["admin"].get(url).text
    assert 'id="delete-case"' in admin and 'id="case-settings-form"' in admin
    reader = two.clients["reader"].get(url).text
    assert "<fieldset disabled>" in reader and 'id="delete-case"' not in reader
    assert XSS not in reader and "&lt;img src=x onerror=alert(1)&gt;" in reader
    analyst = two.clients["analyst"].get(url).text
    assert "<fieldset >" in analyst and 'id="delete-case"' not in analyst
    assert two.clients["outsider"].get(url).status_code == 403


def test_the_settings_form(two: Web) -> None:
    analyst = two.clients["analyst"]
    url = f"/cases/{two.case_id}/settings"
    form = {"name": "case A", "description": "from the form", "status": "open", "owner": "analyst"}
    r = analyst.post(url, data=form, headers={"X-CSRF-Token": ""})
    assert r.status_code == 403  # no CSRF token
    form["csrf_token"] = analyst.headers["X-CSRF-Token"]
    r = analyst.post(url, data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == url
    assert _settings(two, "reader").description == "from the form"
    r = analyst.post(url, data=form | {"name": "case B"})
    assert r.status_code == 400 and "already exists" in r.text and 'role="alert"' in r.text
    assert two.clients["reader"].post(url, data=form).status_code == 403


def test_the_delete_form_wants_the_exact_name(two: Web) -> None:
    admin = two.clients["admin"]
    b = two.other_case  # type: ignore[attr-defined]
    form = {"csrf_token": admin.headers["X-CSRF-Token"], "confirm": "case"}
    r = admin.post(f"/cases/{b}/delete", data=form)
    assert r.status_code == 400 and "type its name exactly" in r.text
    analyst = two.clients["analyst"]
    r = analyst.post(f"/cases/{two.case_id}/delete", data=form | {"confirm": "case A"})
    assert r.status_code == 403
    assert admin.get(f"/api/cases/{b}").status_code == 200


def test_file_rows_by_id_range(two: Web) -> None:
    reader = two.clients["reader"]
    url = f"/api/cases/{two.case_id}/files/rows"
    files = reader.get(f"/api/cases/{two.case_id}/files").json()
    first, last = files[0]["id"], files[-1]["id"]
    rows = reader.get(url, params={"first_id": first, "last_id": last}).json()
    assert [r["id"] for r in rows] == [f["id"] for f in files]
    one = reader.get(url, params={"first_id": first, "last_id": last, "limit": 1}).json()
    assert [r["id"] for r in one] == [first]
    # another case's files are not in this case's range
    b_files = two.clients["admin"].get(f"/api/cases/{two.other_case}/files").json()  # type: ignore[attr-defined]
    b_ids = {f["id"] for f in b_files}
    rows = reader.get(url, params={"first_id": 1, "last_id": max(b_ids)}).json()
    assert not b_ids & {r["id"] for r in rows}
    for bad, status in (
        ({"first_id": last, "last_id": first - 1 or 1}, 400),
        ({"first_id": 0, "last_id": 5}, 422),
        ({"first_id": 1, "last_id": 2**63}, 422),
        ({"first_id": 1, "last_id": 5, "limit": 501}, 422),
        ({"first_id": "x", "last_id": 5}, 422),
    ):
        assert reader.get(url, params=bad).status_code == status, bad


def test_a_hostile_case_name_is_inert_through_its_deletion(two: Web) -> None:
    admin = two.clients["admin"]
    case_id = admin.post("/api/cases", json={"name": XSS}).json()["id"]
    page = admin.get(f"/cases/{case_id}/settings").text
    assert XSS not in page and page.count("&lt;img src=x onerror=alert(1)&gt;") >= 3
    form = {"confirm": XSS}
    r = admin.post(f"/cases/{case_id}/delete", data=form, headers={"X-CSRF-Token": ""})
    assert r.status_code == 403  # no CSRF token: nothing deleted
    assert admin.get(f"/api/cases/{case_id}").status_code == 200
    r = admin.post(
        f"/cases/{case_id}/delete", data=form | {"csrf_token": admin.headers["X-CSRF-Token"]}
    )
    assert r.status_code == 200 and XSS not in r.text and 'id="deleted-note"' in r.text
    assert admin.get(f"/api/cases/{case_id}").status_code == 404


def _snapshot(web: Web, case_id: int) -> dict:
    """What a user of the case sees: files, events, detections, IOC hits, marks, searches."""
    client = web.clients["admin"]
    base = f"/api/cases/{case_id}"
    return {
        path: client.get(f"{base}/{path}").json()
        for path in (
            "files",
            "events?limit=500",
            "events?starred=true",
            "detections",
            "ioc-hits",
            "iocs",
            "saved-searches",
            "settings",
        )
    } | {"dashboard": client.get(base).json()}


def _rows_of(web: Web, case_id: int) -> dict[str, int]:
    """Rows naming the case in any table (by case_id, or by a file of the case)."""
    counts: dict[str, int] = {}
    with web.db.read() as session:
        files = select(EvidenceFile.id).where(EvidenceFile.case_id == case_id)
        for table in Base.metadata.sorted_tables:
            where = []
            if "case_id" in table.c:
                where.append(table.c.case_id == case_id)
            if "file_id" in table.c:
                where.append(table.c.file_id.in_(files))
            if table is Case.__table__:
                where.append(table.c.id == case_id)
            for condition in where:
                n = session.scalar(select(func.count()).select_from(table).where(condition))
                if n:
                    counts[table.name] = counts.get(table.name, 0) + n
    return counts


def _paths(web: Web, case_id: int) -> tuple[set[Path], set[Path]]:
    with web.db.read() as session:
        files = session.scalars(select(EvidenceFile).where(EvidenceFile.case_id == case_id)).all()
        shas = {f.sha256 for f in files}
        segments = session.scalars(select(Segment.path).where(Segment.sha256.in_(shas))).all()
    return {Path(f.stored_path) for f in files}, {Path(p) for p in segments}


def test_delete_needs_an_admin_and_the_exact_name(two: Web) -> None:
    b = two.other_case  # type: ignore[attr-defined]
    for role in ("analyst", "reader", "outsider"):
        r = two.clients[role].delete(f"/api/cases/{b}", params={"confirm": "case B"})
        assert r.status_code == 403
    admin = two.clients["admin"]
    for wrong in ("case b", "case B ", ""):
        r = admin.delete(f"/api/cases/{b}", params={"confirm": wrong})
        assert r.status_code == 400 and "type its name exactly" in r.text
    assert admin.delete(f"/api/cases/{b}").status_code == 422  # no confirmation at all
    assert admin.get(f"/api/cases/{b}").status_code == 200


def test_deleting_a_case_removes_all_of_it_and_nothing_of_the_other(two: Web) -> None:
    a, b = two.case_id, two.other_case  # type: ignore[attr-defined]
    admin = two.clients["admin"]
    before = _snapshot(two, a)
    assert before["detections"] and before["ioc-hits"] and before["events?starred=true"]["rows"]
    a_evidence, a_segments = _paths(two, a)
    b_evidence, b_segments = _paths(two, b)
    b_files = admin.get(f"/api/cases/{b}/files").json()
    b_event = admin.get(f"/api/cases/{b}/events").json()["rows"][0]
    preview = admin.get(f"/api/cases/{b}/deletion").json()
    assert preview["rows"]["detections"] > 0 and preview["rows"]["ioc_hits"] > 0
    assert preview["index_rows"] > 0 and _rows_of(two, b)

    r = admin.delete(f"/api/cases/{b}", params={"confirm": "case B"})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["rows"] == preview["rows"] | {"segments": 1} and report["index_rows"] > 0
    assert report["evidence_files"] == 2 and report["segments"] == 1  # the shared one stays

    # every row of B is gone but the one audit row of its deletion
    assert _rows_of(two, b) == {"audit": 1}
    [row] = admin.get("/api/audit", params={"case_id": b}).json()
    assert row["action"] == "case.delete" and '"index_rows"' in row["detail"]
    with two.app.state.web.index.use() as index:
        assert index.count(b) == 0
    with two.db.read() as session:
        assert session.get(DeletedCase, b).cleaned
    # its own files are gone from disk; the segment A shares with it stays
    assert not any(p.exists() for p in b_evidence)
    assert {p for p in b_segments if p.exists()} == a_segments & b_segments != set()
    assert all(p.exists() for p in a_evidence | a_segments)
    # its ids answer 404 afterwards
    for url in (
        f"/api/cases/{b}",
        f"/api/cases/{b}/files",
        f"/api/cases/{b}/settings",
        f"/api/cases/{b}/events/{b_event['file_id']}/{b_event['seq']}",
        f"/cases/{b}",
    ):
        assert admin.get(url).status_code == 404, url
    assert admin.delete(f"/api/cases/{b}", params={"confirm": "case B"}).status_code == 404
    assert all(f["id"] not in {g["id"] for g in before["files"]} for f in b_files)
    # A is exactly as it was
    assert _snapshot(two, a) == before


def test_a_new_case_never_takes_a_deleted_case_id(two: Web) -> None:
    deleted = two.other_case  # type: ignore[attr-defined]
    r = two.clients["admin"].post("/api/cases", json={"name": "case C"})
    assert r.status_code == 201 and r.json()["id"] > deleted
    assert two.clients["admin"].get(f"/api/cases/{deleted}").status_code == 404

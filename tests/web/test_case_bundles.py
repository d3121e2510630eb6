"""Case bundles from the browser: the case's owner (or an admin) downloads its bundle from
the settings page, an admin uploads it under a new name and the new case holds the same
events; a tampered bundle is refused naming its member; roles and CSRF as elsewhere."""

from __future__ import annotations

import html
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from casescope.model.enums import JobState, Operation
from casescope.model.tables import EvidenceFile, Job
from casescope.workqueue import queue
from tests.bundles import evidence_member, rewrite
from tests.web.conftest import Web, open_web, sample_uploads

SAMPLES = (
    "Lateral Movement/LM_Remote_Service02_7045.evtx",
    "Credential Access/kerberos_pwd_spray_4771.evtx",
)


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory, attack_samples: Path) -> Iterator[Web]:
    home = tmp_path_factory.mktemp("bundlehome")
    with open_web(home, sample_uploads(attack_samples, SAMPLES), case_name="handover") as web:
        yield web


def _export(web: Web, who: str = "analyst") -> bytes:
    client = web.clients[who]
    form = {"csrf_token": client.headers["X-CSRF-Token"]}
    r = client.post(f"/cases/{web.case_id}/export", data=form)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert 'filename="handover.zip"' in r.headers["content-disposition"]
    return r.content


def _import(web: Web, data: bytes, as_name: str = ""):
    admin = web.clients["admin"]
    form = {"csrf_token": admin.headers["X-CSRF-Token"], "as_name": as_name}
    files = {"bundle": ("handover.zip", data, "application/zip")}
    return admin.post("/case-import", data=form, files=files, follow_redirects=False)


def _events(web: Web, name: str) -> int | None:
    """The case's events in the index (an exact count of every event), None: no such case."""
    admin = web.clients["admin"]
    cases = admin.get("/api/cases").json()
    case_id = next((case["id"] for case in cases if case["name"] == name), None)
    if case_id is None:
        return None
    r = admin.get(f"/api/cases/{case_id}/events", params={"q": "*", "exact_total": "true"})
    assert r.status_code == 200, r.text
    return r.json()["total"]


def _leftovers(web: Web) -> list[Path]:
    return sorted(web.settings.tmp_dir.glob("web-*"))


def test_the_owner_downloads_and_an_admin_imports_under_a_new_name(two: Web) -> None:
    page = two.clients["analyst"].get(f"/cases/{two.case_id}/settings").text
    assert 'id="export-form"' in page
    data = _export(two)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert "manifest.json" in archive.namelist()
    r = _import(two, data, "handover copy")
    assert r.status_code == 303, r.text
    new_id = int(r.headers["location"].rsplit("/", 1)[1])
    assert new_id != two.case_id
    assert _events(two, "handover copy") == _events(two, "handover") > 0
    audit = two.clients["admin"].get("/api/audit?limit=50").text
    assert "case.export" in audit and "case.import" in audit
    assert _leftovers(two) == []  # the export streamed and the upload imported are gone


def test_a_tampered_bundle_is_refused_naming_its_member(two: Web, tmp_path: Path) -> None:
    original = tmp_path / "b.zip"
    original.write_bytes(_export(two, "admin"))
    member = evidence_member(original)
    tampered = rewrite(original, tmp_path / "t.zip", {member: b"not the evidence"})
    r = _import(two, tampered.read_bytes(), "tampered")
    assert r.status_code == 400
    assert f"member {member!r} does not match the manifest" in html.unescape(r.text)
    assert 'id="import-form"' in r.text  # the error is shown on the import page
    assert _events(two, "tampered") is None
    assert _leftovers(two) == []


def test_a_bundle_under_a_taken_name_is_refused(two: Web) -> None:
    r = _import(two, _export(two), "")  # the bundle's own name, which this case has
    assert r.status_code == 400
    assert "has a case named 'handover' already" in html.unescape(r.text)


def test_a_case_with_jobs_in_progress_is_not_exported(two: Web) -> None:
    """A paused re-index of one file (as an operation's pause leaves it) keeps the case
    busy: the export is a 409 that says why, and leaves nothing under tmp/."""
    with two.db.session() as session:
        file = session.scalars(
            select(EvidenceFile).where(EvidenceFile.case_id == two.case_id).limit(1)
        ).one()
        was = file.status
        job = queue.enqueue(session, file, Operation.REINDEX, max_attempts=1)
        assert job is not None
        job.state, job_id, file_id = JobState.PAUSED, job.id, file.id
    try:
        client = two.clients["analyst"]
        form = {"csrf_token": client.headers["X-CSRF-Token"]}
        r = client.post(f"/cases/{two.case_id}/export", data=form)
        assert r.status_code == 409, r.text[:300]
        assert "queued or running jobs" in html.unescape(r.text)
        assert _leftovers(two) == []
    finally:
        with two.db.session() as session:
            session.get(Job, job_id).state = JobState.CANCELLED
            session.get(EvidenceFile, file_id).status = was


@pytest.mark.parametrize("who", ["reader", "outsider"])
def test_only_the_owner_or_an_admin_exports(two: Web, who: str) -> None:
    client = two.clients[who]
    form = {"csrf_token": client.headers["X-CSRF-Token"]}
    assert client.post(f"/cases/{two.case_id}/export", data=form).status_code in (403, 404)


def test_only_an_admin_imports_and_csrf_is_checked(two: Web) -> None:
    analyst = two.clients["analyst"]
    assert analyst.get("/case-import").status_code == 403
    files = {"bundle": ("x.zip", b"PK", "application/zip")}
    form = {"csrf_token": analyst.headers["X-CSRF-Token"]}
    assert analyst.post("/case-import", data=form, files=files).status_code == 403
    admin = two.clients["admin"]
    token = admin.headers.pop("X-CSRF-Token")
    try:
        assert admin.post("/case-import", files=files).status_code == 403
        assert admin.post(f"/cases/{two.case_id}/export").status_code == 403
        assert admin.post(f"/cases/{two.case_id}/export", data={"csrf_token": token}).is_success
    finally:
        admin.headers["X-CSRF-Token"] = token
    assert 'id="import-link"' in admin.get("/").text
    assert 'id="import-link"' not in analyst.get("/").text

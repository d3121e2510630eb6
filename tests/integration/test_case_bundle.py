"""A case bundle is verified before anything is registered: a changed member list, a
member escaping the folder, a truncated or foreign zip, a bundle of a newer format or
schema are each refused with a message that names what is wrong, and the deployment is
left as it was. (Round trips and the command itself: tests/e2e/test_case_bundle_cli.py.)"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select

from casescope.config import Settings
from casescope.migrate.bundle import export_case, import_bundle
from casescope.migrate.bundle_format import MANIFEST, BundleError
from casescope.migrate.endpoints import MigrationError
from casescope.migrate.runner import Progress
from casescope.model.db import Database
from casescope.model.tables import AuditRecord, Case
from casescope.services.cases import create_case
from casescope.store.owner import index_lock
from tests.bundles import manifest_of, resealed, rewrite

DB = "home/casescope.db"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle of a case with no evidence (nothing needs the index to make it)."""
    root = tmp_path_factory.mktemp("bundle")
    settings = Settings(home=root / "source")
    db = Database(settings)
    try:
        create_case(db, "alpha", "a case to export")
    finally:
        db.dispose()
    path = root / "alpha.zip"
    export_case(settings, "alpha", path, Progress())
    return path


def _refused(bundle: Path, home: Path) -> str:
    """The message of the refusal; the deployment holds no case, no audit row, no file."""
    settings = Settings(home=home)
    with pytest.raises(BundleError) as refusal:
        import_bundle(settings, bundle, None)
    db = Database(settings)
    try:
        with db.read() as session:
            assert session.scalar(select(func.count()).select_from(Case)) == 0
            assert session.scalar(select(func.count()).select_from(AuditRecord)) == 0
    finally:
        db.dispose()
    ours = ("casescope.db", "index.lock")
    assert not [p for p in home.rglob("*") if p.is_file() and not p.name.startswith(ours)]
    return str(refusal.value)


def test_the_bundle_is_sound(bundle: Path, tmp_path: Path) -> None:
    """The control: the untouched bundle imports (so each refusal below is its change's)."""
    settings = Settings(home=tmp_path / "home")
    report = import_bundle(settings, bundle, None)
    assert report.name == "alpha" and report.verify.ok
    db = Database(settings)
    try:
        with db.read() as session:
            rows = session.execute(select(AuditRecord.action, AuditRecord.detail)).all()
    finally:
        db.dispose()
    imported = [orjson.loads(detail) for action, detail in rows if action == "case.import"]
    assert [(d["case"], d["bundle"]) for d in imported] == [("alpha", str(bundle))]
    source = Database(Settings(home=bundle.parent / "source"))
    try:
        with source.read() as session:
            exported = session.scalars(
                select(AuditRecord.detail).where(AuditRecord.action == "case.export")
            ).all()
    finally:
        source.dispose()
    assert [orjson.loads(detail)["bundle"] for detail in exported] == [str(bundle)]


def _unsealed_change(bundle: Path) -> bytes:
    """The manifest with a member's sha256 changed and its checksum left as it was."""
    manifest = manifest_of(bundle)
    manifest["members"][0]["sha256"] = "0" * 64
    return orjson.dumps(manifest)


@pytest.mark.parametrize("what", ["changed", "extra", "missing", "manifest", "no manifest"])
def test_member_list_changed(bundle: Path, tmp_path: Path, what: str) -> None:
    with zipfile.ZipFile(bundle) as archive:
        data = bytearray(archive.read(DB))
    data[-1] ^= 0xFF
    change: dict[str, bytes | None] = {
        "changed": {DB: bytes(data)},
        "extra": {"home/evidence/extra.evtx": b"not in the manifest"},
        "missing": {DB: None},
        "manifest": {MANIFEST: _unsealed_change(bundle)},
        "no manifest": {MANIFEST: None},
    }[what]
    message = _refused(rewrite(bundle, tmp_path / "t.zip", change), tmp_path / "home")
    assert {
        "changed": f"member '{DB}' does not match the manifest: sha256",
        "extra": "member 'home/evidence/extra.evtx' is not in the bundle's manifest",
        "missing": f"member '{DB}' named by the manifest is missing",
        "manifest": "does not match its checksum",
        "no manifest": "not a case bundle: it has no manifest.json",
    }[what] in message


def test_member_escaping_the_folder(bundle: Path, tmp_path: Path) -> None:
    manifest = manifest_of(bundle)
    evil = {"path": "../evil", "size": 4, "sha256": hashlib.sha256(b"evil").hexdigest()}
    manifest["members"].append(evil)
    change = {MANIFEST: resealed(manifest), "../evil": b"evil"}
    message = _refused(rewrite(bundle, tmp_path / "t.zip", change), tmp_path / "home")
    assert "member '../evil': unsafe member refused: a '..' component" in message
    assert not (tmp_path / "evil").exists() and not (tmp_path / "home" / "evil").exists()


def test_member_larger_than_declared(bundle: Path, tmp_path: Path) -> None:
    """A member whose bytes run past the manifest's size is cut off there and refused."""
    manifest = manifest_of(bundle)
    for member in manifest["members"]:
        if member["path"] == DB:
            member["size"] -= 10
    message = _refused(
        rewrite(bundle, tmp_path / "t.zip", {MANIFEST: resealed(manifest)}), tmp_path / "home"
    )
    assert f"member '{DB}' does not match the manifest: more bytes" in message


def test_truncated_and_foreign_zips(bundle: Path, tmp_path: Path) -> None:
    data = bundle.read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    assert "not a case bundle (not a readable zip" in _refused(truncated, tmp_path / "a")
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(os.urandom(4096))
    assert "not a case bundle" in _refused(garbage, tmp_path / "b")
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr(MANIFEST, b'{"format": "something else"}')
    assert "is not of format 'casescope-case-bundle'" in _refused(other, tmp_path / "c")


@pytest.mark.parametrize("field", ["format_version", "schema_revision"])
def test_newer_bundle(bundle: Path, tmp_path: Path, field: str) -> None:
    manifest = manifest_of(bundle)
    manifest[field] = 99 if field == "format_version" else ["9999"]
    newer = rewrite(bundle, tmp_path / "n.zip", {MANIFEST: resealed(manifest)})
    message = _refused(newer, tmp_path / "home")
    assert {
        "format_version": "the bundle is of format version 99, made by casescope",
        "schema_revision": "schema revision 9999",
    }[field] in message
    assert "newer" in message


def test_import_while_another_process_owns_the_index(bundle: Path, tmp_path: Path) -> None:
    """Refused before anything is registered, naming the owner (not after the case's rows
    are in, when the load finds the index taken)."""
    home = tmp_path / "home"
    with index_lock(Settings(home=home).owner_lock_path, "serve of this test"):
        message = _refused(bundle, home)
    assert "cannot import now: this deployment's event index is owned by pid" in message
    assert "(serve of this test)" in message


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_a_bad_new_name(bundle: Path, tmp_path: Path, name: str) -> None:
    with pytest.raises(MigrationError, match="--as needs a case name of 1 to 200"):
        import_bundle(Settings(home=tmp_path / "home"), bundle, name)


def test_export_of_an_unknown_case(bundle: Path, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    Database(settings).dispose()
    with pytest.raises(MigrationError, match="no case named 'nope'"):
        export_case(settings, "nope", tmp_path / "x.zip", Progress())
    assert not (tmp_path / "x.zip").exists()

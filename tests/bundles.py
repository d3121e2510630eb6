"""Helpers of the case bundle tests: read a bundle's manifest, rewrite its members."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import orjson


def rewrite(bundle: Path, out: Path, change: dict[str, bytes | None]) -> Path:
    """A copy of the bundle with members replaced (None: left out) or added."""
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename not in change:
                dst.writestr(info.filename, src.read(info))
        for name, data in change.items():
            if data is not None:
                dst.writestr(name, data)
    return out


def manifest_of(bundle: Path) -> dict:
    with zipfile.ZipFile(bundle) as archive:
        return orjson.loads(archive.read("manifest.json"))


def evidence_member(bundle: Path) -> str:
    return next(m["path"] for m in manifest_of(bundle)["members"] if "/evidence/" in m["path"])


def resealed(manifest: dict) -> bytes:
    """The manifest with its checksum made right again for its (changed) member list."""
    listed = sorted(manifest["members"], key=lambda m: m["path"])
    manifest["checksum"] = hashlib.sha256(
        orjson.dumps(listed, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()
    return orjson.dumps(manifest)

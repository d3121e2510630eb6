"""Shared fixtures: where the read-only sample data lives.

Sample evidence and Sigma rules stay outside the repository, in ``../shared/data`` beside the
checkout, or wherever ``CASESCOPE_DATA`` points.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("CASESCOPE_DATA", REPO_ROOT.parent / "shared" / "data"))
#: The hosts test apps answer: starlette's TestClient sends `Host: testserver`, browser tests
#: and `serve` processes use 127.0.0.1 (tests/web/test_access.py checks the real default).
TEST_ALLOWED_HOSTS = "testserver,localhost,127.0.0.1,::1"


@pytest.fixture(autouse=True, scope="session")
def _allowed_hosts() -> None:
    os.environ.setdefault("CASESCOPE_ALLOWED_HOSTS", TEST_ALLOWED_HOSTS)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.fail(f"sample data not found at {DATA_DIR} (set CASESCOPE_DATA)")
    return DATA_DIR


@pytest.fixture(scope="session")
def attack_samples(data_dir: Path) -> Path:
    return data_dir / "evtx" / "attack-samples"


@pytest.fixture(scope="session")
def sigma_dir(data_dir: Path) -> Path:
    return data_dir / "sigma"

"""The index owner killed (SIGKILL) in the middle of loading a large segment: the next owner
resumes; no event is lost and none is in the index twice. Real chDB, real owner process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.enums import IndexState
from casescope.model.tables import EvidenceFile
from casescope.store.loader import load_pending
from casescope.store.owner import open_index
from tests.integration.conftest import add_files
from tests.integration.test_loader import make_batch, mark_ready, write_segment

EVENTS = 300_000
SLICE = 5_000  # 60 INSERTs: the owner is killed after the first, long before the last

OWNER = """
import logging, sys
from casescope.config import Settings
from casescope.model.db import Database
from casescope.store.loader import load_pending
from casescope.store.owner import open_index

logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
settings = Settings()
with open_index(settings, role="test owner") as index:
    load_pending(Database(settings), index, settings)
"""


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CASESCOPE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CASESCOPE_LOAD_BATCH_ROWS", str(SLICE))
    s = Settings()
    s.ensure_dirs()
    return s


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings)
    yield database
    database.dispose()


def _kill_after_first_slice(settings: Settings) -> None:
    """Start an owner process loading the pending segments; SIGKILL it once a slice is in."""
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER],
        env={**os.environ, "CASESCOPE_HOME": str(settings.home_dir)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        assert owner.stderr is not None
        for line in owner.stderr:
            if line.startswith("loaded events 0-"):
                os.kill(owner.pid, signal.SIGKILL)
                break
            assert time.monotonic() < deadline, "the owner never loaded a slice"
        else:
            pytest.fail(f"the owner exited ({owner.wait()}) before loading a slice")
    finally:
        owner.kill()
        owner.wait()
    assert owner.returncode == -signal.SIGKILL


def test_owner_killed_mid_load_resumes_without_loss_or_duplicates(
    settings: Settings, db: Database
) -> None:
    [file_id] = add_files(db, 1)
    mark_ready(db, file_id, write_segment(settings, "f" * 64, make_batch(EVENTS, "x")), EVENTS)

    _kill_after_first_slice(settings)

    with db.read() as session:  # the file's bookkeeping never said "loaded"
        assert session.get(EvidenceFile, file_id).index_state is IndexState.PENDING
    with open_index(settings, role="inspector") as index:  # the lock died with the owner
        partial = index.count()
    assert 0 < partial < EVENTS  # killed mid-load, some slices were in

    with open_index(settings, role="restarted owner") as index:
        report = load_pending(db, index, settings)
        assert report.files == 1
        assert index.count() == EVENTS
        duplicates = index.scalar(
            "SELECT count() - uniqExact(file_id, seq) AS d FROM casescope.events", {}
        )
        assert int(duplicates) == 0
        assert int(index.scalar("SELECT max(seq) AS m FROM casescope.events", {})) == EVENTS - 1
    with db.read() as session:
        assert session.get(EvidenceFile, file_id).index_state is IndexState.LOADED

"""Fixtures for tests against the real metadata DB (SQLite, or PostgreSQL where a module asks
for both) and the real chDB index."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path

import pyarrow as pa
import pytest

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.enums import FileType, Operation
from casescope.model.tables import Case, EvidenceFile
from casescope.store.index import ChdbIndex, LoadItem
from casescope.store.segments import SegmentWriter
from casescope.workqueue import queue
from tests.postgres import PostgresCluster


class Backend(StrEnum):
    """The metadata databases casescope runs on."""

    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


#: `pytestmark = BOTH_DATABASES` runs a module's tests on SQLite and on PostgreSQL.
BOTH_DATABASES = pytest.mark.parametrize("backend", list(Backend), indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Backend:
    """SQLite unless the test is parametrised with BOTH_DATABASES."""
    return Backend(getattr(request, "param", Backend.SQLITE))


@pytest.fixture
def settings(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    backend: Backend,
    request: pytest.FixtureRequest,
) -> Settings:
    home = tmp_path / "home"
    if backend is Backend.POSTGRESQL:
        cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
        monkeypatch.setenv("CASESCOPE_DATABASE_URL", cluster.database())
    monkeypatch.setenv("CASESCOPE_HOME", str(home))
    monkeypatch.setenv("CASESCOPE_WORKERS", "2")
    monkeypatch.setenv("CASESCOPE_HEARTBEAT_SECONDS", "0.5")
    monkeypatch.setenv("CASESCOPE_LEASE_SECONDS", "3")
    s = Settings()
    s.ensure_dirs()
    return s


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings)
    yield database
    database.dispose()


def add_files(
    db: Database,
    count: int,
    *,
    case_name: str = "case",
    queued: bool = True,
    stored_dir: Path | None = None,
) -> list[int]:
    """Register `count` evidence rows (pointing at placeholder paths) and queue them."""
    with db.session() as session:
        case = Case(name=case_name)
        session.add(case)
        session.flush()
        ids = []
        for n in range(count):
            path = (stored_dir or Path("/nonexistent")) / f"file{n}"
            row = EvidenceFile(
                case_id=case.id,
                sha256=f"{n:064x}",
                size_bytes=1,
                file_type=FileType.EVTX,
                original_path=str(path),
                stored_path=str(path),
            )
            session.add(row)
            session.flush()
            if queued:
                queue.enqueue(session, row, Operation.FULL, max_attempts=3)
            ids.append(row.id)
    return ids


def index_of(home: Path, batch: pa.RecordBatch) -> ChdbIndex:
    """A real chDB index under `home` holding `batch` as file 1 of case 1 (via a segment)."""
    with SegmentWriter(home / "seg" / "aa" / "events.parquet", home / "tmp") as writer:
        writer.write(batch)
        path = writer.commit()
    index = ChdbIndex(home / "index")
    index.load([LoadItem(1, 1, path)])
    return index

"""The `workers` table: who is alive, what each is doing, and how much memory it uses."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

import psutil
from sqlalchemy import delete, select

from casescope.model.db import Database
from casescope.model.tables import WorkerRecord


#: Also what admins get of each worker in the web API's `/api/system` (web/api/system.py).
@dataclass(frozen=True)
class WorkerInfo:
    id: str
    pid: int
    host: str
    rss_mb: float
    tasks_done: int
    current_file_id: int | None
    seconds_since_heartbeat: float


_own: tuple[int, psutil.Process] | None = None


def _process(pid: int | None) -> psutil.Process:
    """This process's psutil handle is made once (creating one costs about a millisecond)."""
    global _own
    if pid is not None and pid != os.getpid():
        return psutil.Process(pid)
    if _own is None or _own[0] != os.getpid():
        _own = (os.getpid(), psutil.Process())
    return _own[1]


def rss_mb(pid: int | None = None) -> float:
    try:
        return _process(pid).memory_info().rss / 2**20
    except psutil.Error:
        return 0.0


def register(db: Database, worker_id: str) -> None:
    now = time.time()
    with db.session() as session:
        session.merge(
            WorkerRecord(
                id=worker_id,
                host=socket.gethostname(),
                pid=os.getpid(),
                started_at=now,
                heartbeat_at=now,
                rss_mb=rss_mb(),
                tasks_done=0,
            )
        )


def unregister(db: Database, worker_id: str) -> None:
    with db.session() as session:
        session.execute(delete(WorkerRecord).where(WorkerRecord.id == worker_id))


def unregister_pool(db: Database, prefix: str) -> None:
    """Drop the rows of a dead pool's workers (their ids start with `prefix`)."""
    with db.session() as session:
        session.execute(
            delete(WorkerRecord).where(WorkerRecord.id.startswith(prefix, autoescape=True))
        )


def live_workers(db: Database, stale_after: float) -> list[WorkerInfo]:
    """Workers whose heartbeat is younger than `stale_after` seconds."""
    now = time.time()
    with db.read() as session:
        rows = session.scalars(
            select(WorkerRecord).where(WorkerRecord.heartbeat_at > now - stale_after)
        ).all()
    return [
        WorkerInfo(
            r.id,
            r.pid,
            r.host,
            round(r.rss_mb, 1),
            r.tasks_done,
            r.current_file_id,
            round(now - r.heartbeat_at, 1),
        )
        for r in rows
    ]

"""The `workers` table: who is alive, what each is doing, and how much memory it uses."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass, field

import psutil
from sqlalchemy import delete, select

from casescope.model.db import Database
from casescope.model.enums import JobState
from casescope.model.tables import Job, WorkerRecord

#: File ids listed per host (the count is complete).
HELD_SHOWN = 20


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


@dataclass(frozen=True)
class HostInfo:
    """A host with live workers: how many, their memory, and the files they hold (running
    jobs leased to them; a host that stops heartbeating loses them when the leases run out)."""

    host: str
    workers: int
    rss_mb: float
    files_held: int
    file_ids: list[int] = field(default_factory=list)  # the first HELD_SHOWN of them


def worker_id_prefix(pool_pid: int, host: str) -> str:
    """The start of the ids of the workers a pool spawns (`WorkerPool._spawn`): the host
    name (CASESCOPE_HOST_NAME) and the pool's pid, unique across the hosts of a team."""
    return f"{host}-{pool_pid}-"


def register(db: Database, worker_id: str, host: str) -> None:
    now = time.time()
    with db.session() as session:
        session.merge(
            WorkerRecord(
                id=worker_id,
                host=host,
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


def pool_worker_pids(db: Database, prefix: str) -> list[int]:
    """The pids of a pool's registered workers (their ids start with `prefix`)."""
    with db.read() as session:
        where = WorkerRecord.id.startswith(prefix, autoescape=True)
        return list(session.scalars(select(WorkerRecord.pid).where(where)))


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


def hosts_of(db: Database, workers: list[WorkerInfo]) -> list[HostInfo]:
    """The hosts of `workers` (live ones), each with the files its workers hold, by name."""
    host_of = {w.id: w.host for w in workers}
    held: dict[str, list[int]] = defaultdict(list)
    if host_of:
        with db.read() as session:
            rows = session.execute(
                select(Job.worker_id, Job.file_id)
                .where(Job.state == JobState.RUNNING, Job.worker_id.in_(list(host_of)))
                .order_by(Job.file_id)
            ).all()
        for worker_id, file_id in rows:
            held[host_of[worker_id]].append(file_id)
    hosts = sorted({w.host for w in workers})
    return [
        HostInfo(
            host,
            sum(1 for w in workers if w.host == host),
            round(sum(w.rss_mb for w in workers if w.host == host), 1),
            len(held[host]),
            held[host][:HELD_SHOWN],
        )
        for host in hosts
    ]

"""Which mode casescope runs in, and whether each part of it answers: `doctor` and `/health`.

Embedded: SQLite and chDB in the home, one index owner. Team: the metadata DB on PostgreSQL
and/or the event index on a ClickHouse server (CASESCOPE_DATABASE_URL, CASESCOPE_INDEX_URL;
docs/deploy.md). Each part is checked for what breaks it in practice: the metadata DB
answers and is at this casescope's Alembic heads; the index answers and its table is of this
casescope's DDL version; the home has room left.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum

from sqlalchemy.exc import SQLAlchemyError

from casescope.config import Settings
from casescope.errors import CasescopeError, IndexBusyError
from casescope.model.db import SCHEMA_HEADS, Database, schema_revisions
from casescope.model.outage import is_outage
from casescope.store.events_sql import ddl_status
from casescope.store.index_url import IndexTransport, parse_index_url
from casescope.store.owner import open_index

logger = logging.getLogger(__name__)

#: Below this much free space in the home, the home is reported as a problem: segments of a
#: large ingest need room, and SQLite and chDB fail hard on a full disk.
MIN_FREE_BYTES = 1 << 30


class Mode(StrEnum):
    EMBEDDED = "embedded"
    TEAM = "team"


class Part(StrEnum):
    DB = "metadata DB"
    INDEX = "event index"
    HOME = "home"


@dataclass(frozen=True)
class PartCheck:
    part: Part
    ok: bool
    detail: str


@dataclass
class Deployment:
    mode: Mode
    db_dialect: str
    index_transport: IndexTransport
    checks: list[PartCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def as_dict(self) -> dict:
        return asdict(self) | {"ok": self.ok}


def _db_check(db: Database) -> PartCheck:
    dialect = db.engine.dialect.name
    try:
        found = schema_revisions(db.engine)
    except SQLAlchemyError as exc:
        if is_outage(exc):  # logged once per outage by whoever waits for the database
            logger.debug("the metadata DB is unreachable: %s", exc)
            return PartCheck(Part.DB, False, f"{dialect}: unreachable (CASESCOPE_DATABASE_URL)")
        logger.warning("the metadata DB did not answer: %s", exc)
        return PartCheck(Part.DB, False, f"{dialect}: did not answer (CASESCOPE_DATABASE_URL)")
    if found != SCHEMA_HEADS:
        have, need = ",".join(sorted(found)) or "none", ",".join(sorted(SCHEMA_HEADS))
        return PartCheck(Part.DB, False, f"{dialect}: schema at {have}, needs {need}")
    return PartCheck(Part.DB, True, f"{dialect}: reachable, schema at {','.join(SCHEMA_HEADS)}")


def _index_check(where: str, ddl_version: Callable[[], int | None]) -> PartCheck:
    try:
        version = ddl_version()
    except IndexBusyError as exc:  # the embedded index's owner (serve, ingest) checks it
        return PartCheck(Part.INDEX, True, f"{where}: {exc}")
    except (CasescopeError, RuntimeError, OSError) as exc:
        return PartCheck(Part.INDEX, False, f"{where}: {exc}")
    ok, ddl = ddl_status(version)
    return PartCheck(Part.INDEX, ok, f"{where}: reachable, {ddl}")


def _home_check(settings: Settings) -> PartCheck:
    usage = shutil.disk_usage(settings.home_dir)
    gib = usage.free / 2**30
    ok = usage.free >= MIN_FREE_BYTES
    return PartCheck(Part.HOME, ok, f"{settings.home_dir}: {gib:.1f} GiB free")


def opened_ddl_version(settings: Settings) -> int | None:
    """The index's DDL version, opening it for the question (IndexBusyError: owned)."""
    with open_index(settings, role="casescope doctor") as index:
        return index.ddl_version()


def check_deployment(
    settings: Settings, db: Database, ddl_version: Callable[[], int | None] | None = None
) -> Deployment:
    """The mode and a check of each part; `ddl_version` asks the index (default: open it)."""
    target = parse_index_url(settings.index_url)
    dialect = db.engine.dialect.name
    team = target.transport.is_team or dialect != "sqlite"
    report = Deployment(Mode.TEAM if team else Mode.EMBEDDED, dialect, target.transport)
    ask = ddl_version or (lambda: opened_ddl_version(settings))
    report.checks = [_db_check(db), _index_check(target.where, ask), _home_check(settings)]
    return report

"""The two deployments: settings from a home directory or an env file, the source opened
read-only from private copies, the target brought to the schema head.

The source is never written. Opening SQLite even with `mode=ro` creates its `-wal` and
`-shm` files, and chDB writes into any index directory it opens, so both are read from
private copies in the target's tmp folder: the database file with its write-ahead log, and
(for `verify`) the index. A SQLite source at an older schema revision is upgraded in that
copy; a PostgreSQL source must be at the schema head (it is opened read-only, so it
cannot be upgraded in place, and is never copied).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from sqlalchemy import Engine, create_engine, make_url

from casescope.config import Settings
from casescope.errors import CasescopeError
from casescope.model.db import SCHEMA_HEADS, Database, migrate, schema_revisions

logger = logging.getLogger(__name__)


class MigrationError(CasescopeError):
    """A migration cannot start or go on: bad endpoints, conflicts, a missing phase."""


class FileSettings(Settings):
    """Settings from an env file or arguments only: nothing of this process's environment
    (a `CASESCOPE_HOME` of the shell) leaks into the source or the target."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, dotenv_settings)


def settings_from(path: Path) -> Settings:
    """A deployment's settings: PATH is a home directory (embedded) or an env file of
    CASESCOPE_* settings, which must name CASESCOPE_HOME (a path that does not exist is a
    home, created when it is the target)."""
    if not path.is_file():
        return FileSettings(_env_file=None, home=path)
    text = path.read_text(errors="replace")
    if "CASESCOPE_HOME" not in text:
        raise MigrationError(f"{path}: an env file must set CASESCOPE_HOME")
    try:
        settings = FileSettings(_env_file=path)
    except ValidationError as exc:
        raise MigrationError(f"{path}: {exc.errors()[0]['msg']}") from None
    if not settings.home.is_absolute():
        settings = FileSettings(_env_file=path, home=path.parent / settings.home)
    return settings


def describe(settings: Settings) -> str:
    """The deployment's database, without a password (checkpoints are kept per source)."""
    url = make_url(settings.db_url)
    if url.get_backend_name() == "sqlite":
        return f"sqlite:///{settings.db_path}"
    return url.render_as_string(hide_password=True)


def check_distinct(source: Settings, target: Settings) -> None:
    if source.home_dir == target.home_dir:
        raise MigrationError(f"source and target are the same home ({source.home_dir})")
    if describe(source) == describe(target):
        raise MigrationError(f"source and target are the same database ({describe(source)})")


def known_revisions() -> frozenset[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from casescope.model.db import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return frozenset(
        script.revision for script in ScriptDirectory.from_config(config).walk_revisions()
    )


def check_not_newer(revisions: frozenset[str], which: str) -> None:
    unknown = revisions - known_revisions()
    if unknown:
        raise MigrationError(
            f"the {which} database is at schema revision {', '.join(sorted(unknown))}, newer "
            f"than this casescope knows (its head: {', '.join(sorted(SCHEMA_HEADS))}); "
            "use the casescope version that wrote it, or a newer one"
        )


def check_source(settings: Settings, live: bool = False) -> None:
    """The source exists and (unless it is read `live`) is idle."""
    if not settings.home_dir.is_dir():
        raise MigrationError(f"the source home {settings.home_dir} does not exist")
    if not live:
        check_idle(settings)


def check_idle(settings: Settings) -> None:
    """Refuse a source whose index owner runs (its copy would not be a consistent one);
    the lock is only tested, with a read-only descriptor, never created or written."""
    path = settings.owner_lock_path
    if not path.exists():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise MigrationError(
            f"the source is in use ({path.read_text().strip()}): stop its casescope "
            "processes (serve, ingest, workers) before migrating it"
        ) from None
    finally:
        os.close(fd)


def _snapshot_sqlite(settings: Settings, folder: Path) -> Path:
    """A consistent copy of a database other processes may be writing (SQLite's online
    backup). Unlike the file copy it opens the database, which may create its `-shm`: for
    a live source, which is this deployment, never for one that must stay byte-identical."""
    copy = folder / "source.db"
    source = sqlite3.connect(f"file:{settings.db_path}?mode=ro", uri=True, timeout=30)
    try:
        target = sqlite3.connect(copy)
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()
    return copy


def _copy_sqlite(settings: Settings, folder: Path, live: bool = False) -> Path:
    if not settings.db_path.is_file():
        raise MigrationError(f"no casescope database at {settings.db_path}")
    if live:
        return _snapshot_sqlite(settings, folder)
    copy = folder / "source.db"
    shutil.copyfile(settings.db_path, copy)
    wal = settings.db_path.with_name(settings.db_path.name + "-wal")
    if wal.is_file():
        shutil.copyfile(wal, folder / "source.db-wal")
    return copy


@dataclass
class Source:
    settings: Settings
    engine: Engine
    scratch: Path  # private copies, removed on close
    #: Read while it runs (a case export of this deployment): from a consistent snapshot,
    #: not refused for its index owner.
    live: bool = False

    @property
    def home(self) -> Path:
        return self.settings.home_dir


@contextmanager
def open_source(settings: Settings, scratch_root: Path, live: bool = False) -> Iterator[Source]:
    """The source's metadata DB, read-only: SQLite from a private copy (upgraded when it is
    at an older revision), PostgreSQL in read-only transactions and at the head."""
    check_source(settings, live)
    scratch_root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="migrate-source-", dir=scratch_root))
    try:
        engine = _source_engine(settings, scratch, live)
        try:
            yield Source(settings, engine, scratch, live)
        finally:
            engine.dispose()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _source_engine(settings: Settings, scratch: Path, live: bool) -> Engine:
    if settings.db_url.startswith("sqlite"):
        engine = create_engine(f"sqlite:///{_copy_sqlite(settings, scratch, live)}")
        revisions = schema_revisions(engine)
        check_not_newer(revisions, "source")
        if revisions != SCHEMA_HEADS:
            logger.info("upgrading the private copy of the source from %s", sorted(revisions))
            migrate(engine)
        return engine
    engine = create_engine(
        settings.db_url, connect_args={"options": "-c default_transaction_read_only=on"}
    )
    revisions = schema_revisions(engine)
    check_not_newer(revisions, "source")
    if revisions != SCHEMA_HEADS:
        engine.dispose()
        raise MigrationError(
            f"the source PostgreSQL database is at revision {', '.join(sorted(revisions))}: "
            "upgrade it first (run any casescope command of this version against it)"
        )
    return engine


def open_target(settings: Settings) -> Database:
    """The target's metadata DB at the schema head (created when new)."""
    settings.ensure_dirs()
    probe = Database(settings, run_migrations=False)
    try:
        check_not_newer(schema_revisions(probe.engine), "target")
    finally:
        probe.dispose()
    return Database(settings)


#: The file that makes a folder of the index a MergeTree part.
PART_MARK = "checksums.txt"


def _link_or_copy(source: str, target: str) -> None:
    """A file of a MergeTree part is hard-linked, anything else copied. ClickHouse never
    rewrites a part's files: a merge or a mutation writes new parts and unlinks old ones,
    so the link is a private copy at the cost of a directory entry (the index's bulk),
    while the small files it may rewrite at start (metadata, format) are real copies."""
    if (Path(source).parent / PART_MARK).is_file():
        try:
            os.link(source, target)
            return
        except OSError as exc:  # another filesystem, or links not allowed there
            logger.debug("copying %s instead of linking it: %s", source, exc)
    shutil.copy2(source, target)


@contextmanager
def source_index_copy(source: Source) -> Iterator[Path | None]:
    """A private copy of the source's index folder (None when it has none)."""
    if not source.settings.index_dir.is_dir():
        yield None
        return
    copy = source.scratch / "index"
    shutil.copytree(source.settings.index_dir, copy, symlinks=True, copy_function=_link_or_copy)
    try:
        yield copy
    finally:
        shutil.rmtree(copy, ignore_errors=True)

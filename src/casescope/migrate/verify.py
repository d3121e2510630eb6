"""`migrate verify`: both sides compared, table by table and case by case.

Metadata: per table and unit, the source's rows and the target's rows of the same keys,
counted and summed as row hashes (order-independent; `phases.canonical`). Events: per file,
the events of each index counted and their hashes of (seq, ts, event id) summed by the index
itself, the sum tied to the file's sha256,
from a private copy of the source's index and from the target's; every evidence file is
present on the target with its size. Functional: a user's password checked against both
sides' hashes, a token accepted by the target, each saved search's count on both indexes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from sqlalchemy import Engine, Table, select

from casescope.config import Settings
from casescope.migrate.endpoints import Source, source_index_copy
from casescope.migrate.keys import LEFT_OUT, TARGET_WINS, KeyMap
from casescope.migrate.phases import (
    CHECKSUM_MOD,
    NO_CASE,
    Phase,
    canonical,
    for_target,
    key_column,
    renamed,
    row_hash,
    tables_of,
    units,
)
from casescope.model.db import Database
from casescope.model.tables import EvidenceFile
from casescope.model.users import SavedSearch
from casescope.services.event_search import count_matches
from casescope.services.search import SearchRequest, build_where
from casescope.store.index import ChdbIndex, EventIndex
from casescope.store.index_url import IndexTransport, parse_index_url
from casescope.store.owner import open_index
from casescope.store.query_bounds import QueryTimeouts

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    """One line of the verify table."""

    phase: str
    what: str
    unit: str
    source: str
    target: str
    ok: bool


@dataclass
class VerifyReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


@dataclass(frozen=True)
class Digest:
    count: int
    checksum: int

    def __str__(self) -> str:
        return f"{self.count} rows, {self.checksum:016x}"


#: Source rows read (and target rows looked up by their keys) at a time.
VERIFY_CHUNK = 5_000


def _add(digest: Digest, table: Table, rows: list, home: Path) -> Digest:
    total = digest.checksum
    for row in rows:
        total = (total + row_hash(canonical(table, row, home))) % CHECKSUM_MOD
    return Digest(digest.count + len(rows), total)


@dataclass(frozen=True)
class Expect:
    """How the target holds the source's rows: a case renamed (`--as`), keys moved."""

    rename: dict[int, str] = field(default_factory=dict)
    keymap: KeyMap | None = None


def _expected(
    table: Table, rows: list, source: Source, target_home: Path, expect: Expect
) -> tuple[list, Path]:
    """The source rows as the target should hold them, and the home their paths are in."""
    named = [renamed(table, row, expect.rename) for row in rows]
    if expect.keymap is None:
        return named, source.home
    moved = (
        expect.keymap.row(table, for_target(table, row, source.home, target_home), target_home)
        for row in named
    )
    return [row for row in moved if row is not None], target_home


def table_digests(
    source: Source,
    target: Database,
    table: Table,
    condition: object,
    expect: Expect | None = None,
) -> tuple[Digest, Digest]:
    """The digest of the unit's source rows (as `expect` says the target holds them) and of
    the target's rows of the same keys, read in key order a chunk at a time."""
    expect = expect or Expect()
    target_home = target.settings.home_dir
    key = key_column(table)
    mine = theirs = Digest(0, 0)
    after = None
    while True:
        query = select(table).where(condition).order_by(key).limit(VERIFY_CHUNK)
        if after is not None:
            query = query.where(key > after)
        with source.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        if not rows:
            return mine, theirs
        after = rows[-1][key.name]
        expected, home = _expected(table, list(rows), source, target_home, expect)
        keys = [row[key.name] for row in expected]
        with target.read() as session:
            found = session.execute(select(table).where(key.in_(keys))).mappings().all()
        mine = _add(mine, table, expected, home)
        theirs = _add(theirs, table, list(found), target_home)


def verify_tables(
    source: Source,
    target: Database,
    case_names: dict[int, str],
    report: VerifyReport,
    phases: tuple[Phase, ...] = (Phase.CONFIG, Phase.FINDINGS),
    expect: Expect | None = None,
) -> None:
    """Per table and unit, a check of the digests; with moved keys, the tables the
    target keeps its own rows of (`keys.TARGET_WINS`) are not compared."""
    moved = expect is not None and expect.keymap is not None
    for phase in phases:
        for table in tables_of(phase):
            if moved and table.name in TARGET_WINS | LEFT_OUT:
                continue
            for unit, condition in units(table, list(case_names)):
                mine, theirs = table_digests(source, target, table, condition, expect)
                name = "(no case)" if unit == NO_CASE else case_names[unit]
                report.checks.append(
                    Check(phase.value, table.name, name, str(mine), str(theirs), mine == theirs)
                )


#: Per file of a case: its events counted, and their hashes of (seq, ts, event id) summed in
#: two halves so that the sums cannot overflow (2**32 events of 2**32 each fit in 64 bits).
#: Computed by the index (same SQL on chDB and a ClickHouse server), not row by row here.
_FILE_DIGESTS = (
    "SELECT file_id, count() AS n, sum(intDiv(h, 4294967296)) AS high, sum(h % 4294967296) AS low "
    "FROM (SELECT file_id, cityHash64(seq, toUnixTimestamp64Micro(ts), "
    "ifNull(toInt64(event_id), -1)) AS h FROM casescope.events WHERE case_id = {case:UInt32}) "
    "GROUP BY file_id"
)


def file_digest(sha256: str, count: int, high: int, low: int) -> Digest:
    """A file's digest: its events' hash sum, tied to the file's content by its sha256 (file
    ids differ between deployments; the sha256 does not)."""
    events_sum = ((high << 32) + low) % CHECKSUM_MOD
    return Digest(count, row_hash(f"{sha256}|{events_sum}".encode()))


def index_digests(index: ChdbIndex, case_id: int, sha_of: dict[int, str]) -> dict[int, Digest]:
    """Per file of the case: its events in `index`, counted and summed as event hashes."""
    digests: dict[int, Digest] = {}
    for batch in index.stream_batches(_FILE_DIGESTS, {"case": case_id}):
        columns = batch.to_pydict()
        for file_id, count, high, low in zip(
            columns["file_id"], columns["n"], columns["high"], columns["low"], strict=True
        ):
            digests[file_id] = file_digest(sha_of.get(file_id, "?"), count, high, low)
    return digests


@dataclass(frozen=True)
class FileRow:
    id: int
    sha256: str
    size_bytes: int
    original_path: str
    stored_path: str


def case_files(engine: Engine, case_id: int) -> list[FileRow]:
    query = select(
        EvidenceFile.id,
        EvidenceFile.sha256,
        EvidenceFile.size_bytes,
        EvidenceFile.original_path,
        EvidenceFile.stored_path,
    ).where(EvidenceFile.case_id == case_id)
    with engine.connect() as connection:
        return [FileRow(*row) for row in connection.execute(query.order_by(EvidenceFile.id))]


#: Index transports whose data a source shares with its server rather than holds in a folder.
SERVERS = frozenset({IndexTransport.HTTP, IndexTransport.HTTPS})


@contextmanager
def _source_index(source: Source) -> Iterator[EventIndex | None]:
    """The source's index to read: a ClickHouse server's as it is (reading writes nothing
    there), an embedded one from a private copy (chDB writes into any folder it opens)."""
    if parse_index_url(source.settings.index_url).transport in SERVERS:
        with open_index(source.settings, "migrate verify (source)") as server:
            yield server
        return
    with source_index_copy(source) as path:
        if path is None:
            yield None
            return
        index = ChdbIndex(path, timeouts=QueryTimeouts.from_settings(source.settings))
        try:
            yield index
        finally:
            index.close()


def _saved_searches(engine: Engine, case_id: int) -> list[tuple[int, str, str]]:
    query = select(SavedSearch.id, SavedSearch.name, SavedSearch.params).where(
        SavedSearch.case_id == case_id, SavedSearch.saved.is_(True)
    )
    with engine.connect() as connection:
        rows = connection.execute(query.order_by(SavedSearch.id)).all()
    return [(row[0], row[1], str(orjson.loads(row[2]).get("q", ""))) for row in rows]


@dataclass
class IndexSide:
    """What verify needs from one side's index: per file digests, saved search counts."""

    files: dict[int, dict[int, Digest]] = field(default_factory=dict)
    searches: dict[int, int] = field(default_factory=dict)


def _measure(index: ChdbIndex | None, engine: Engine, case_ids: list[int]) -> IndexSide:
    side = IndexSide()
    for case_id in case_ids:
        sha_of = {f.id: f.sha256 for f in case_files(engine, case_id)}
        side.files[case_id] = index_digests(index, case_id, sha_of) if index else {}
        for search_id, _name, query in _saved_searches(engine, case_id):
            where = build_where(SearchRequest(case_id, query))
            side.searches[search_id] = count_matches(index, where, None)[0] if index else 0
    return side


def measure_source(source: Source, case_ids: list[int]) -> IndexSide:
    with _source_index(source) as index:
        return _measure(index, source.engine, case_ids)


def measure_target(target: Database, case_ids: list[int]) -> IndexSide:
    settings: Settings = target.settings
    with open_index(settings, "migrate verify") as index:
        return _measure(index, target.engine, case_ids)

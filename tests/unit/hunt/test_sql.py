"""The index hunt (ClickHouse SQL on a real chDB table) agrees with the batch matcher."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from casescope.hunt import sql
from casescope.hunt.ioc import Ioc
from casescope.hunt.matcher import compile_iocs
from casescope.hunt.sql import CHUNK_SIZE, hunt_chdb, hunt_queries, ioc_hunt_sql
from casescope.store.events_table import DATABASE, EVENTS_DDL
from tests.unit.hunt.cases import CASES
from tests.unit.hunt.events import ioc, make_batch

_COLUMNS = (
    "seq, ifNull(ts, toDateTime64(0, 6, 'UTC')), event_id, channel, provider, computer, "
    "record_id, level, user_name, user_sid, fields, raw"
)
_TARGET = (
    "case_id, file_id, seq, ts, event_id, channel, provider, computer, record_id, level, "
    "user_name, user_sid, fields, raw"
)

#: IOCs: every distinct one of the cases, ids from 1.
IOCS = [
    ioc(value, ioc_type, n)
    for n, (value, ioc_type) in enumerate(dict.fromkeys((c.ioc, c.ioc_type) for c in CASES), 1)
]


def _ioc_id(value: str, ioc_type: str | None) -> int | None:
    return next(i.id for i in IOCS if i.value == value and ioc_type in (None, i.type))


def _case_rows() -> list[dict[str, Any]]:
    """One event per case; every fourth case's text sits in a core column instead."""
    rows: list[dict[str, Any]] = []
    for n, case in enumerate(CASES):
        if n % 4 == 3:
            rows.append({"user_name": case.text, "fields": {"Other": "-"}})
        else:
            rows.append({"computer": f"WS{n}", "fields": {"Value": case.text, "Empty": ""}})
    return rows


def _random_rows(count: int) -> list[dict[str, Any]]:
    """Values stitched from IOC texts, their neighbours and separators (seeded)."""
    rng = random.Random(20240301)
    pieces = [c.text for c in CASES] + [i.normalised for i in IOCS if i.type != "regex"]
    joins = ["", " ", "-", ".", "\\", "/", "0", "a", ":", "@", "\n", "'", '"', "_", "\t"]

    def value() -> str:
        parts = [rng.choice(pieces) for _ in range(rng.randint(1, 3))]
        text = rng.choice(joins).join(parts)
        text = rng.choice(joins) + text + rng.choice(joins)
        return text.upper() if rng.random() < 0.2 else text

    return [
        {"user_name": value(), "fields": {f"F{k}": value() for k in range(rng.randint(0, 4))}}
        for _ in range(count)
    ]


FILES = {  # file_id: (case_id, batch)
    11: (1, make_batch(_case_rows())),
    12: (1, make_batch(_random_rows(400))),
    13: (2, make_batch(_case_rows()[:10])),
}


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from chdb import session as chdb_session

    home: Path = tmp_path_factory.mktemp("hunt_sql")
    chdb = chdb_session.Session(str(home / "index"))
    chdb.query(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    chdb.query(EVENTS_DDL)
    for file_id, (case_id, batch) in FILES.items():
        path = home / f"{file_id}.parquet"
        pq.write_table(pa.Table.from_batches([batch]), path)
        chdb.query(
            f"INSERT INTO {DATABASE}.events ({_TARGET}) "
            f"SELECT {case_id}, {file_id}, {_COLUMNS} FROM file('{path}', Parquet)"
        )
    yield chdb
    chdb.close()


def _batch_hits(iocs: list[Ioc], case_id: int) -> set[tuple[int, int, int, str]]:
    matcher = compile_iocs(iocs)
    found = set()
    for file_id, (case, batch) in FILES.items():
        if case == case_id:
            for row in matcher.match(batch).to_pylist():
                found.add((file_id, row["seq"], row["ioc_id"], row["field"]))
    return found


def _index_hits(session: Any, iocs: list[Ioc], case_id: int, **kw: Any) -> set[tuple]:
    table = hunt_chdb(session, case_id, iocs, **kw)
    return {(r["file_id"], r["seq"], r["ioc_id"], r["field"]) for r in table.to_pylist()}


def test_index_hunt_agrees_with_batch_matcher(session: Any) -> None:
    batch = _batch_hits(IOCS, 1)
    index = _index_hits(session, IOCS, 1)
    assert len(batch) > 100
    assert index == batch, (sorted(index - batch)[:10], sorted(batch - index)[:10])


def test_index_hunt_meets_every_case(session: Any) -> None:
    index = _index_hits(session, IOCS, 1)
    for seq, case in enumerate(CASES):
        ioc_id = _ioc_id(case.ioc, case.ioc_type)
        hit = any(f == 11 and s == seq and i == ioc_id for f, s, i, _ in index)
        assert hit is case.expected, case.why


def test_case_and_file_filters(session: Any) -> None:
    case_two = _index_hits(session, IOCS, 2)
    assert case_two and {f for f, *_ in case_two} == {13}
    assert case_two == _batch_hits(IOCS, 2)
    only_12 = _index_hits(session, IOCS, 1, file_ids=[12])
    assert only_12 and {f for f, *_ in only_12} == {12}
    assert _index_hits(session, IOCS, 1, file_ids=[]) == set()


def test_queries_are_chunked_with_distinct_parameters(
    session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    many = [ioc(f"host{n}.evil.com", ioc_id=1000 + n) for n in range(CHUNK_SIZE + 5)]
    assert len(hunt_queries([*IOCS, *many], case_id=1)) == 2
    monkeypatch.setattr(sql, "CHUNK_SIZE", 5)
    assert len(hunt_queries(IOCS, case_id=1)) == -(-len(IOCS) // 5)
    assert _index_hits(session, IOCS, 1) == _batch_hits(IOCS, 1)
    fragments = ioc_hunt_sql(IOCS)
    names = [name for f in fragments for name in f.params]
    assert len(names) == len(set(names))
    assert [f.ioc_id for f in fragments] == [i.id for i in IOCS]


def test_text_index_tokens_are_used() -> None:
    fragment = ioc_hunt_sql([ioc("evil-site.com", ioc_id=3)])[0]
    assert "hasToken(search_text" in fragment.event_where
    assert fragment.params["i0_tok0"] == "site"

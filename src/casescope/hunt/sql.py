"""Hunt IOCs in the event index (ClickHouse / chDB) with the same rules as the batch matcher.

`ioc_hunt_sql` turns each IOC into two predicates over the `events` table of
docs/architecture.md: an event-level one on `search_text` (the lower-cased values of the
event, which uses the text index through `hasToken`) and a value-level one deciding which
field matched. `hunt_queries` combines them into one query per chunk of IOCs returning
(file_id, seq, ioc_id, field); `hunt_chdb` runs those on a chDB session.

Both predicates come from the same `IocPattern` as the batch matcher, so the two agree
(tests/unit/hunt/test_sql.py holds them to it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import pyarrow as pa

from casescope.hunt.ioc import Ioc, IocError
from casescope.hunt.patterns import IPV4_CANDIDATE, IPV4_RUN, IocPattern, compile_pattern
from casescope.hunt.values import CORE_TEXT_COLUMNS

#: The event index's table (database `casescope`, see `store.index`).
EVENTS_TABLE = "casescope.events"
#: IOCs per query. Each IOC costs one pass over `search_text`; bigger chunks share the
#: table read, so a list of about a hundred IOCs is hunted in one query
#: (`bench/ioc_rehunt.py` times the index hunt). A `multiSearchAny` prefilter over all
#: literals was slower and is not used.
CHUNK_SIZE = 128
#: Longest excerpt of a matched value a hunt query returns (as the batch analyzer keeps).
EXCERPT_CHARS = 400

INDEX_HIT_SCHEMA = pa.schema(
    [
        pa.field("file_id", pa.uint64(), nullable=False),
        pa.field("seq", pa.uint64(), nullable=False),
        pa.field("ioc_id", pa.int64(), nullable=False),
        pa.field("field", pa.string(), nullable=False),
    ]
)

_KEYS = f"CAST(arrayConcat({list(CORE_TEXT_COLUMNS)!r}, mapKeys(fields)), 'Array(String)')"
_VALUES = (
    "arrayConcat(["
    + ", ".join(f"toString({name})" for name in CORE_TEXT_COLUMNS)
    + "], mapValues(fields))"
)
_NO_HITS = "CAST([], 'Array(Tuple(Int64, String))')"
_SHARED_PARAMS = {"ipv4_run": IPV4_RUN, "ipv4_candidate": IPV4_CANDIDATE}
_IPV4_NUMBER = (
    "arraySum(arrayMap((o, w) -> toUInt64OrZero(o) * w, splitByChar('.', t), "
    "[16777216, 65536, 256, 1]))"
)


@dataclass(frozen=True)
class IocSql:
    """One IOC as SQL: `event_where` over an events row, `value_where` over one value.

    `value_where` may use `v` (the value) and `lv` (`lowerUTF8(v)`). Parameter names are
    unique per IOC of one `ioc_hunt_sql` call, so fragments of one call can be combined.
    """

    ioc_id: int
    event_where: str
    value_where: str
    params: dict[str, object]


def ioc_hunt_sql(iocs: Sequence[Ioc]) -> list[IocSql]:
    """The SQL predicates of each IOC (each must carry an id, unique among them)."""
    if len({i.id for i in iocs}) != len(iocs):
        raise IocError("IOC ids must be unique within one hunt")
    return [_pattern_sql(compile_pattern(ioc), f"i{n}_") for n, ioc in enumerate(iocs)]


def _pattern_sql(pattern: IocPattern, prefix: str) -> IocSql:
    params: dict[str, object] = {}

    def param(name: str, value: object, type_: str = "String") -> str:
        params[prefix + name] = value
        return f"{{{prefix}{name}:{type_}}}"

    if pattern.on_original:  # a regex IOC: as written, on each original value
        regex = param("re", pattern.regex)
        value_where = f"match(v, {regex})"
        event_where = f"arrayExists(v -> v != '' AND {value_where}, {_VALUES})"
        return IocSql(pattern.ioc_id, event_where, value_where, params)
    event, value = [], []
    if pattern.literal:
        literal = param("lit", pattern.literal)
        event.append(f"position(search_text, {literal}) > 0")
        value.append(f"position(lv, {literal}) > 0")
    event += [f"hasToken(search_text, {param(f'tok{i}', t)})" for i, t in enumerate(pattern.tokens)]
    if pattern.regex:
        regex = param("re", pattern.regex)
        event.append(f"match(search_text, {regex})")
        value.append(f"match(lv, {regex})")
    if pattern.cidr:
        low, high = param("lo", pattern.cidr[0], "UInt64"), param("hi", pattern.cidr[1], "UInt64")
        event.append(_in_range("search_text", low, high))
        value.append(_in_range("lv", low, high))
    return IocSql(pattern.ioc_id, " AND ".join(event), " AND ".join(value), params)


def _in_range(text: str, low: str, high: str) -> str:
    """Some dotted quad of `text` is in [low, high] (same candidates as the batch matcher)."""
    return (
        f"arrayExists(t -> match(t, {{ipv4_candidate:String}}) AND "
        f"{_IPV4_NUMBER} BETWEEN {low} AND {high}, "
        f"arrayMap(t -> trim(BOTH '.' FROM t), extractAll({text}, {{ipv4_run:String}})))"
    )


def hunt_queries(
    iocs: Sequence[Ioc],
    case_id: int,
    file_ids: Sequence[int] | None = None,
    table: str = EVENTS_TABLE,
) -> list[tuple[str, dict[str, object]]]:
    """Queries returning (file_id, seq, ioc_id, field) hits of `iocs` in one case, each with
    the event's ts and record_id and the matched value (`excerpt`, its first EXCERPT_CHARS
    characters; a repeated key's first value, as the batch analyzer records).

    Parameters are plain Python values; run them through something that binds them for
    chDB (`hunt_chdb`, or `store.index.ChdbIndex.query_rows`).
    """
    fragments = ioc_hunt_sql(iocs)
    queries = []
    for start in range(0, len(fragments), CHUNK_SIZE):
        chunk = fragments[start : start + CHUNK_SIZE]
        params: dict[str, object] = {"case_id": case_id, **_SHARED_PARAMS}
        where = "case_id = {case_id:UInt32}"
        if file_ids is not None:
            params["file_ids"] = list(file_ids)
            where += " AND file_id IN {file_ids:Array(UInt64)}"
        for fragment in chunk:
            params.update(fragment.params)
        queries.append((_chunk_query(chunk, where, table), params))
    return queries


def _chunk_query(chunk: Sequence[IocSql], where: str, table: str) -> str:
    flags = ", ".join(f"({f.event_where}) AS e{n}" for n, f in enumerate(chunk))
    any_flag = " OR ".join(f"e{n}" for n in range(len(chunk)))
    hits = ",\n  ".join(
        f"if(e{n}, arrayMap(k -> (toInt64({int(f.ioc_id)}), k), arrayFilter((k, v, lv) -> "
        f"v != '' AND {f.value_where}, ks, vs, lvs)), {_NO_HITS})"
        for n, f in enumerate(chunk)
    )
    return (
        "SELECT file_id, seq, hit.1 AS ioc_id, hit.2 AS field, ts, record_id,\n"
        f" substringUTF8(vs[indexOf(ks, hit.2)], 1, {EXCERPT_CHARS}) AS excerpt FROM (\n"
        f" SELECT file_id, seq, ts, record_id, {_KEYS} AS ks, {_VALUES} AS vs,\n"
        f"  arrayMap(v -> lowerUTF8(v), vs) AS lvs, {flags}\n"
        f" FROM {table} WHERE {where} AND ({any_flag}))\n"
        f"ARRAY JOIN arrayDistinct(arrayConcat(\n  {hits})) AS hit\n"
        "ORDER BY file_id, seq, ioc_id, field"
    )


class ChdbSession(Protocol):
    """The part of `chdb.session.Session` the hunt uses."""

    def query(self, sql: str, fmt: str = ..., params: Mapping[str, Any] | None = ...) -> Any: ...


def hunt_chdb(
    session: ChdbSession,
    case_id: int,
    iocs: Sequence[Ioc],
    file_ids: Sequence[int] | None = None,
    table: str = EVENTS_TABLE,
) -> pa.Table:
    """Run the IOC hunt for one case on a chDB session: (file_id, seq, ioc_id, field) rows."""
    rows: list[dict[str, Any]] = []
    for sql, params in hunt_queries(iocs, case_id, file_ids, table):
        result = session.query(sql, "JSONEachRow", params=bind_chdb(params))
        rows += [orjson.loads(line) for line in result.bytes().splitlines() if line]
    table_ = pa.Table.from_pylist(
        [{name: row[name] for name in INDEX_HIT_SCHEMA.names} for row in rows],
        schema=INDEX_HIT_SCHEMA,
    )
    return table_.sort_by([(name, "ascending") for name in INDEX_HIT_SCHEMA.names])


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_QUOTED = str.maketrans({"'": "\\'", **{chr(k): v for k, v in _ESCAPES.items()}})


def bind_chdb(params: Mapping[str, object]) -> dict[str, object]:
    """chDB reads parameter values as escaped text: escape strings, render arrays."""
    bound: dict[str, object] = {}
    for name, value in params.items():
        if isinstance(value, str):
            bound[name] = value.translate(_ESCAPES)
        elif isinstance(value, list | tuple):
            bound[name] = "[" + ",".join(_array_item(v) for v in value) + "]"
        else:
            bound[name] = value
    return bound


def _array_item(value: object) -> str:
    if isinstance(value, str):
        return "'" + value.translate(_QUOTED) + "'"
    return str(int(value))  # type: ignore[call-overload]

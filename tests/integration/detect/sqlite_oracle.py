"""pySigma's SQLite backend as an oracle: the same rules and events, a different engine.

Events go into an in-memory table `logs` with one `TEXT COLLATE NOCASE` column per field
(Zircolite's layout: case-insensitive `=`, LIKE is case-insensitive for ASCII), the core
columns under their Sigma names, and `rowid` as the event's position. Each rule is
converted once per pipeline variant the engine used, and the rows of all its queries are
the oracle's answer.
"""

from __future__ import annotations

import pickle
import re
import sqlite3
from dataclasses import dataclass, field

import pyarrow as pa
from sigma.backends.sqlite import sqliteBackend
from sigma.exceptions import SigmaError
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule

CORE = {
    "EventID": "event_id",
    "Channel": "channel",
    "Provider_Name": "provider",
    "Computer": "computer",
    "EventRecordID": "record_id",
    "Level": "level",
}
_MISSING_COLUMN = re.compile(r"no such column: (.+)$")


def _regexp(pattern: str, value: object) -> bool:
    return value is not None and re.search(pattern, str(value)) is not None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def event_table(table: pa.Table) -> sqlite3.Connection:
    """An in-memory SQLite `logs` table holding the events of `table` (EVENT_SCHEMA)."""
    rows: list[dict[str, str]] = []
    columns: dict[str, str] = {name.lower(): name for name in CORE}
    core = {name: table.column(col).to_pylist() for name, col in CORE.items()}
    for index, pairs in enumerate(table.column("fields").to_pylist()):
        row = {name: values[index] for name, values in core.items()}
        seen = {name.lower() for name in CORE}
        for key, value in pairs:
            if key.lower() not in seen:  # first value of a name wins, any spelling
                seen.add(key.lower())
                columns.setdefault(key.lower(), key)
                row[columns[key.lower()]] = value
        rows.append(row)
    connection = sqlite3.connect(":memory:")
    connection.create_function("regexp", 2, _regexp, deterministic=True)
    names = list(columns.values())
    ddl = ", ".join(f"{_quote(n)} TEXT COLLATE NOCASE" for n in names)
    connection.execute(f"CREATE TABLE logs ({ddl})")
    marks = ", ".join("?" * len(names))
    connection.executemany(
        f"INSERT INTO logs VALUES ({marks})",
        ([None if row.get(n) is None else str(row.get(n)) for n in names] for row in rows),
    )
    connection.execute("CREATE INDEX logs_event_id ON logs (EventID)")
    return connection


@dataclass
class OracleResult:
    rows: dict[str, set[int]] = field(default_factory=dict)  # rule id -> 0-based rows
    unsupported: dict[str, str] = field(default_factory=dict)  # rule id -> why


def _queries(rule: SigmaRule, pipeline: ProcessingPipeline) -> list[str]:
    copy = pickle.loads(pickle.dumps(rule))
    return sqliteBackend(pipeline).convert_rule(copy)


def _run(connection: sqlite3.Connection, query: str) -> set[int]:
    sql = query.replace("SELECT * FROM logs", "SELECT rowid FROM logs", 1)
    while True:
        try:
            return {row[0] - 1 for row in connection.execute(sql)}
        except sqlite3.OperationalError as exc:
            missing = _MISSING_COLUMN.search(str(exc))
            if missing is None:
                raise
            name = missing.group(1)
            connection.execute(f"ALTER TABLE logs ADD COLUMN {_quote(name)} TEXT COLLATE NOCASE")


def run_rules(
    connection: sqlite3.Connection,
    rules: list[tuple[str, SigmaRule, list[ProcessingPipeline]]],
) -> OracleResult:
    """Rows matched by each (rule id, pySigma rule, pipelines) through the SQLite backend."""
    result = OracleResult()
    for rule_id, rule, pipelines in rules:
        try:
            queries = [q for p in pipelines for q in _queries(rule, p)]
        except (SigmaError, NotImplementedError) as exc:
            result.unsupported[rule_id] = f"{type(exc).__name__}: {exc}"
            continue
        found: set[int] = set()
        for query in queries:
            found |= _run(connection, query)
        result.rows[rule_id] = found
    return result

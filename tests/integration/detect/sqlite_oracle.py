"""pySigma's SQLite backend as an oracle: the same rules and events, a different engine.

The events do not come from our parser: `evtx_events` reads each EVTX file with the `evtx`
crate and flattens its JSON the way the peer tools do (Zircolite, Hayabusa), by its own
rules. System gives the core columns under their Sigma names (`EventID`, `Channel`,
`Provider_Name`, `Computer`, `EventRecordID`, `Level`); each named EventData value is a
column of its name; unnamed `<Data>` values are one `Data` column, joined by newlines; a
UserData wrapper's children (at any depth) are columns of their leaf names; attributes are
left out. A name with spaces (`New Value`) is also a column without them and with
underscores instead (`NewValue`, `New_Value`), as Hayabusa's aliases make it. Values are
text: numbers in decimal, booleans `true`/`false`, lists as compact JSON; the first value of
a name wins.

The rows go into an in-memory table `logs` with one `TEXT COLLATE NOCASE` column per name
(Zircolite's layout: case-insensitive `=`, LIKE is case-insensitive for ASCII), with
`rowid` as the event's position over all files. Each rule is converted once per pipeline
variant the engine used, and the rows of all its queries are the oracle's answer.
"""

from __future__ import annotations

import json
import pickle
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import evtx
from sigma.backends.sqlite import sqliteBackend
from sigma.exceptions import SigmaError
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule

CORE = ("EventID", "Channel", "Provider_Name", "Computer", "EventRecordID", "Level")
_MISSING_COLUMN = re.compile(r"no such column: (.+)$")


def _regexp(pattern: str, value: object) -> bool:
    return value is not None and re.search(pattern, str(value)) is not None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text(value: object) -> str | None:
    if isinstance(value, dict):
        value = value.get("#text")
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _unnamed(value: object) -> str | None:
    """Unnamed `<Data>` elements: `{"#text": [...]}`, a list, or one value."""
    if isinstance(value, dict):
        value = value.get("#text")
    items = value if isinstance(value, list) else [value]
    texts = ["" if item is None else _text(item) or "" for item in items]
    return "\n".join(texts) if any(texts) else None


def _leaves(node: object, out: list[tuple[str, str]]) -> None:
    """Leaf (name, text) pairs of a UserData element, by leaf name; attributes skipped."""
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "#attributes" or key.endswith("_attributes"):
            continue
        if isinstance(value, dict) and "#text" not in value:
            _leaves(value, out)
        elif (text := _text(value)) is not None:
            out.append((key, text))


def flatten(event: dict) -> list[tuple[str, str]]:
    """(column name, text) pairs of one `Event` object of the crate's JSON."""
    system = event.get("System") or {}
    provider = (system.get("Provider") or {}).get("#attributes") or {}
    core = (
        ("EventID", system.get("EventID")),
        ("Channel", system.get("Channel")),
        ("Provider_Name", provider.get("Name")),
        ("Computer", system.get("Computer")),
        ("EventRecordID", system.get("EventRecordID")),
        ("Level", system.get("Level")),
    )
    out = [(name, text) for name, value in core if (text := _text(value)) is not None]
    data = event.get("EventData")
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "Data":
                text = _unnamed(value)
            elif key == "#attributes":
                continue
            else:
                text = _text(value)
            if text is not None:
                out.append((key, text))
    _leaves(event.get("UserData"), out)
    return out


def evtx_events(paths: Iterable[Path]) -> Iterator[list[tuple[str, str]]]:
    """Every record of every file, flattened, in file then record order."""
    for path in paths:
        for record in evtx.PyEvtxParser(str(path)).records_json():
            yield flatten(json.loads(record["data"])["Event"])


def _spellings(name: str) -> tuple[str, ...]:
    if " " not in name:
        return (name,)
    return (name, name.replace(" ", ""), name.replace(" ", "_"))


def event_table(events: Iterable[list[tuple[str, str]]]) -> sqlite3.Connection:
    """An in-memory SQLite `logs` table holding the flattened events, one row each."""
    rows: list[dict[str, str]] = []
    columns: dict[str, str] = {name.lower(): name for name in CORE}
    for pairs in events:
        row: dict[str, str] = {}
        for key, value in pairs:
            for spelling in _spellings(key):
                column = columns.setdefault(spelling.lower(), spelling)
                row.setdefault(column, value)  # first value of a name wins, any spelling
        rows.append(row)
    connection = sqlite3.connect(":memory:")
    connection.create_function("regexp", 2, _regexp, deterministic=True)
    names = list(columns.values())
    ddl = ", ".join(f"{_quote(n)} TEXT COLLATE NOCASE" for n in names)
    connection.execute(f"CREATE TABLE logs ({ddl})")
    marks = ", ".join("?" * len(names))
    connection.executemany(
        f"INSERT INTO logs VALUES ({marks})", ([row.get(n) for n in names] for row in rows)
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

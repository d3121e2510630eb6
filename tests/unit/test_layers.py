"""The event index is queried through the store only: services, web and cli write no SQL over it.

import-linter (pyproject.toml) checks which packages import which; what it cannot see is SQL
kept in strings. This scan reads the source of every module above the store and fails on what
would mean a query written there: the events table named in a string, ClickHouse query
parameters (`{name:Type}`), the table's name imported from `store.events_table`, or a query
sent with the index's `query_rows` / `stream_batches`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "src" / "casescope"
ABOVE_THE_STORE = ("services", "web", "cli")
_TABLE = re.compile(r"\b(?:FROM|JOIN|INTO|TABLE)\s+(?:\{DATABASE\}|casescope)\.events\b", re.I)
_PARAMETER = re.compile(
    r"\{\w+:(?:String|U?Int\d+|Float\d+|Bool|DateTime|Date|Array|Map|Nullable|Tuple)\b"
)
_QUERY_METHODS = ("query_rows", "stream_batches")


def _modules() -> list[Path]:
    return sorted(p for layer in ABOVE_THE_STORE for p in (PACKAGE / layer).rglob("*.py"))


def _text_of(node: ast.JoinedStr) -> str:
    """An f-string's text with each `{name}` as written (`{DATABASE}`)."""
    parts = []
    for value in node.values:
        if isinstance(value, ast.Constant):
            parts.append(str(value.value))
        elif isinstance(value, ast.FormattedValue) and isinstance(value.value, ast.Name):
            parts.append("{" + value.value.id + "}")
        else:
            parts.append("{...}")
    return "".join(parts)


def _problems(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        text = None
        if isinstance(node, ast.JoinedStr):
            text = _text_of(node)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        if text is not None and _TABLE.search(text):
            yield node.lineno, "names the events table in a string"
        elif text is not None and _PARAMETER.search(text):
            yield node.lineno, "writes a ClickHouse query parameter"
        if isinstance(node, ast.ImportFrom) and node.module == "casescope.store.events_table":
            yield node.lineno, "imports store.events_table"
        if isinstance(node, ast.Name) and node.id == "DATABASE":
            yield node.lineno, "uses the index's database name"
        if isinstance(node, ast.Attribute) and node.attr in _QUERY_METHODS:
            yield node.lineno, f"sends a query itself ({node.attr})"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_index_sql_above_the_store(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    found = sorted(set(_problems(tree)))
    assert not found, "\n".join(f"{path.name}:{line}: {why}" for line, why in found)


def test_the_scan_finds_what_it_looks_for() -> None:
    """The scan itself: each kind of query-writing code is caught."""
    source = (
        "from casescope.store.events_table import DATABASE\n"
        "a = f'SELECT count() FROM {DATABASE}.events'\n"
        "b = 'SELECT 1 FROM casescope.events'\n"
        "c = 'channel = {w_channel:String}'\n"
        "d = index.query_rows(a, {})\n"
    )
    found = {why for _, why in _problems(ast.parse(source))}
    assert found == {
        "imports store.events_table",
        "uses the index's database name",
        "names the events table in a string",
        "writes a ClickHouse query parameter",
        "sends a query itself (query_rows)",
    }
    assert not list(_problems(ast.parse("x = 'SELECT 1'\ny = '{name}'\n")))

"""One classifier says whether an error is chDB running out of the index's memory budget: the
query bounds (a clear IndexMemoryError), the loader's retry and a failed file's message all
ask it, so they cannot drift apart."""

from __future__ import annotations

import ast

import pytest
from tests.conftest import REPO_ROOT

from casescope.errors import IndexMemoryError, QueryTimeoutError
from casescope.store.load_failures import load_error_message
from casescope.store.query_bounds import is_memory_error, query_errors

CHDB_MEMORY = (
    "Code: 241. DB::Exception: (total) memory limit exceeded: would use 301.00 MiB "
    "(attempt to allocate chunk of 4194304 bytes), maximum: 300.00 MiB. (MEMORY_LIMIT_EXCEEDED)"
)
CHDB_TIMEOUT = "Code: 159. DB::Exception: Timeout exceeded: elapsed 1.2 seconds. (TIMEOUT_EXCEEDED)"


def test_memory_errors_are_told_from_others() -> None:
    assert is_memory_error(RuntimeError(CHDB_MEMORY))
    assert is_memory_error(IndexMemoryError("over the budget"))
    assert not is_memory_error(RuntimeError(CHDB_TIMEOUT))
    assert not is_memory_error(OSError("no such segment"))


def test_query_errors_turn_chdb_errors_into_clear_ones() -> None:
    with pytest.raises(IndexMemoryError, match="CASESCOPE_INDEX_MEMORY_MB"), query_errors(30.0):
        raise RuntimeError(CHDB_MEMORY)
    with pytest.raises(QueryTimeoutError), query_errors(1.0):
        raise RuntimeError(CHDB_TIMEOUT)
    with pytest.raises(RuntimeError, match="syntax"), query_errors(1.0):
        raise RuntimeError("Code: 62. DB::Exception: syntax error")


def test_a_file_that_outgrew_the_budget_says_so() -> None:
    for error in (RuntimeError(CHDB_MEMORY), IndexMemoryError("over the budget")):
        message = load_error_message(error, 300, "case", 7)
        assert "CASESCOPE_INDEX_MEMORY_MB=300" in message
    assert "CASESCOPE_INDEX_MEMORY_MB" not in load_error_message(OSError("gone"), 300, "c", 7)


def test_one_module_knows_chdbs_error_code() -> None:
    """chDB's error name is written once in the source (the classifier's), not matched
    again wherever a memory error is handled."""
    places = []
    for path in sorted((REPO_ROOT / "src" / "casescope").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value == "MEMORY_LIMIT_EXCEEDED":
                places.append(f"{path.name}:{node.lineno}")
    assert len(places) == 1, places

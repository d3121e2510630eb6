"""Spreadsheet formula injection (OWASP "CSV Injection"): which cells a spreadsheet would run,
and how a CSV cell is defused. Exports do it in SQL (`store.exports`), listings in Python
(`cli.output`); both use these prefixes. No imports: short commands load it for nothing."""

from __future__ import annotations

#: A CSV cell starting with one of these is run as a formula by spreadsheet programs.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: str) -> str:
    """Defuse spreadsheet formula injection: prefix a quote to formula-like cells."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value

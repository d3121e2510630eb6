"""What commands print for scripts: one `--format` enum and one writer of JSON lines and CSV.

Every listing command takes `--format table|jsonl|csv` (a few reports `table|json`), offered
through `format_option` so that `--help` lists only what the command prints. Rows go out
through `write_rows`: JSON lines as the JSON encoder escapes them, CSV with the bytes as they
were but formula-like cells neutralised (a cell starting with `=`, `+`, `-`, `@`... cannot run
in a spreadsheet).
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson
import typer

from casescope.store.cells import neutralise_cell


class OutputFormat(StrEnum):
    TABLE = "table"  # for people: a Rich table
    JSON = "json"  # one JSON document (a report such as `status`)
    JSONL = "jsonl"  # one JSON object per line
    CSV = "csv"  # a header, then one line per row


ROWS = (OutputFormat.TABLE, OutputFormat.JSONL, OutputFormat.CSV)
REPORT = (OutputFormat.TABLE, OutputFormat.JSON)


def format_option(choices: Sequence[OutputFormat] = ROWS) -> Any:
    """`--format` offering only `choices` (use with `Annotated[OutputFormat, ...]`)."""
    names = [choice.value for choice in choices]

    def parse(value: str | OutputFormat) -> OutputFormat:
        if str(value) not in names:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(names)}")
        return OutputFormat(str(value))

    return typer.Option(
        "--format",
        parser=parse,
        metavar="[" + "|".join(names) + "]",
        help=f"Output format: {', '.join(names)}.",
    )


def _text(value: object) -> str:
    """A cell's text; times (UTC, naive from SQLite) as ISO 8601 with a Z."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return str(value)


def _record(row: object) -> Mapping[str, object]:
    if is_dataclass(row) and not isinstance(row, type):
        return asdict(row)
    assert isinstance(row, Mapping), type(row)
    return row


def write_rows(rows: Iterable[object], fmt: OutputFormat, columns: Sequence[str] = ()) -> None:
    """Rows (mappings or dataclasses) as JSON lines or CSV on stdout; `columns` is the CSV
    header printed when there are no rows."""
    if fmt is OutputFormat.JSONL:
        out = sys.stdout.buffer
        for row in rows:
            record = {
                k: _text(v) if isinstance(v, datetime) else v for k, v in _record(row).items()
            }
            out.write(orjson.dumps(record, default=str) + b"\n")
        return
    if fmt is not OutputFormat.CSV:
        raise ValueError(f"write_rows writes jsonl or csv, not {fmt}")
    writer = None
    for row in rows:
        record = _record(row)
        if writer is None:
            writer = csv.DictWriter(sys.stdout, fieldnames=list(record))
            writer.writeheader()
        writer.writerow({k: neutralise_cell(_text(v)) for k, v in record.items()})
    if writer is None and columns:
        csv.writer(sys.stdout).writerow(columns)

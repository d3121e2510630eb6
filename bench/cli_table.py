"""Benchmark: CPU per row of a CLI listing printed to a pipe, Rich's Table against `Listing`.

Builds `--rows` synthetic rows shaped like `casescope files` (id, status, type, size,
events, path, sha256, problem; a path of 60-100 characters, one row in ten with a problem
line) and prints them, with the columns of `files` (cli/cases.py), to /dev/null at the
piped width (cli/common.py PIPED_WIDTH) and, with `--width`, at a narrower one where the
paths fold. Each run builds the table and prints it, in this process: CPU seconds
(`time.process_time`) from the first `add_row` to the end of `console.print`. The two ways
take turns, `--runs` rounds; prints the median CPU per row of each, in microseconds.

Usage: .venv/bin/python bench/cli_table.py [--rows 10000] [--runs 5] [--width 160]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from rich import box
from rich.console import Console
from rich.filesize import decimal
from rich.table import Table

from casescope.cli.cases import file_columns
from casescope.cli.common import PIPED_WIDTH, shown
from casescope.cli.tables import Listing

Row = tuple[object, ...]


def rows(count: int) -> list[Row]:
    """Rows as `files` makes them from the metadata DB."""
    made = []
    for n in range(count):
        folder = f"/evidence/host-{n % 97:03d}/Windows/System32/winevt/Logs"
        path = f"{folder}/{'Microsoft-Windows-Sysmon%4Operational' if n % 3 else 'Security'}.evtx"
        problem = "chunk 4: bad checksum, 212 records skipped" if n % 10 == 0 else ""
        made.append(
            (n + 1, "done", "evtx", 1_000 * (n % 5_000) + 68_608, 137 * (n % 900), path,
             f"{n:064x}", problem)
        )  # fmt: skip
    return made


def cells(row: Row) -> list[object]:
    file_id, status, kind, size, events, path, sha256, problem = row
    return [
        str(file_id), status, kind, decimal(int(size)), f"{events:,}",  # type: ignore[call-overload]
        shown(path), str(sha256)[:12], shown(problem),
    ]  # fmt: skip


def rich_table(data: list[Row], console: Console) -> None:
    table = Table(*file_columns(), box=box.SIMPLE_HEAD)
    for row in data:
        table.add_row(*cells(row))
    console.print(table)


def listing(data: list[Row], console: Console) -> None:
    table = Listing(*file_columns(), box=box.SIMPLE_HEAD)
    for row in data:
        table.add_row(*cells(row))
    console.print(table)


def cpu_per_row(way: Callable[[list[Row], Console], None], data: list[Row], width: int) -> float:
    with Path(os.devnull).open("w") as sink:
        console = Console(file=sink, width=width)
        started = time.process_time()
        way(data, console)
        return (time.process_time() - started) / len(data) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000, help="Rows in the table.")
    parser.add_argument("--runs", type=int, default=5, help="Rounds of both ways.")
    parser.add_argument("--width", type=int, default=PIPED_WIDTH, help="Console columns.")
    args = parser.parse_args()
    data = rows(args.rows)
    ways = {"rich Table": rich_table, "Listing": listing}
    samples: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.runs):
        for name, way in ways.items():
            samples[name].append(cpu_per_row(way, data, args.width))
    print(f"{args.rows:,} rows, {args.width} columns, {args.runs} runs; CPU per row:")
    for name, values in samples.items():
        runs = " ".join(f"{v:.1f}" for v in values)
        print(f"  {name:<11} median {statistics.median(values):8.1f} us   ({runs})")


if __name__ == "__main__":
    main()

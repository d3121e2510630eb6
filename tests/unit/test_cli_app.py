"""The `casescope` command imports a command's module only when that command runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import click
import pytest
import typer.main
from typer.testing import CliRunner

from casescope.cli.app import COMMANDS, app, load_command

#: Heavy modules that the long-lived processes of an ingest must not hold.
HEAVY = ("fastapi", "uvicorn", "jinja2", "sigma", "polars", "casescope.detect", "casescope.web")
#: The commands an analyst types many times a day (bench/cli.py times them).
EVERYDAY = ("case", "files", "status", "detections", "search")
#: What those must not import before they run: chDB comes with the index when a command
#: opens it, the rest with the commands that use them (`serve`, `ingest`, `rules`, ...).
SLOW_TO_IMPORT = (
    "fastapi",
    "uvicorn",
    "jinja2",
    "sigma",
    "polars",
    "chdb",
    "pyarrow",
    "pandas",
    "numpy",
    "clickhouse_connect",
    "alembic",
    "casescope.detect.engine",
    "casescope.hunt.matcher",
    "casescope.parse.files",  # every parser
    "pyarrow.compute",
    "casescope.web",
    # SQLite's own dialect is what a home uses by default; PostgreSQL's comes with its engine
    "sqlalchemy.dialects.postgresql",
    "psutil",  # process memory: `status` shows the workers', the index checks its own
    "casescope.jobs.launcher",  # starting a pool: what `ingest` and `case import` follow
    "yaml",  # a Sigma rule's text, parsed when a rule is described
)
#: What a command may import of SLOW_TO_IMPORT. `search` builds its query and reads its rows as
#: Arrow (chDB imports pyarrow anyway), and opens the index; `status` lists live workers with
#: their memory, and pool failures.
ALLOWED = {
    "search": ("pyarrow", "numpy", "psutil"),
    "status": ("psutil", "casescope.jobs.launcher"),
}


def _modules_after_loading(*names: str) -> set[str]:
    """Top-level and casescope modules imported by a fresh interpreter loading `names`."""
    code = (
        "import json, sys\n"
        "from casescope.cli.app import load_command\n"
        f"for name in {list(names)!r}: load_command(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out))


@pytest.mark.parametrize("command", ["ingest", "worker"])
def test_long_lived_commands_do_not_import_the_web_app_or_sigma_engine(command: str) -> None:
    loaded = _modules_after_loading(command)
    assert f"casescope.cli.{COMMANDS[command][0]}" in loaded
    assert not [name for name in HEAVY if name in loaded]


@pytest.mark.parametrize("command", EVERYDAY)
def test_everyday_commands_import_neither_the_index_nor_other_commands_stacks(
    command: str,
) -> None:
    loaded = _modules_after_loading(command)
    assert f"casescope.cli.{COMMANDS[command][0]}" in loaded
    allowed = ALLOWED.get(command, ())
    assert [name for name in SLOW_TO_IMPORT if name in loaded and name not in allowed] == []


def _help_output(load_all: bool) -> tuple[str, list[str]]:
    """`casescope --help` written in a fresh interpreter after loading every command (as
    running them would) or none, and the modules loaded by then."""
    code = (
        "import contextlib, io, json, sys\n"
        "import typer\n"
        "from casescope.cli.app import COMMANDS, app\n"
        "group = typer.main.get_command(app)\n"
        "ctx = group.context_class(group, info_name='casescope')\n"
        f"if {load_all}: [group.get_command(ctx, name) for name in COMMANDS]\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out): group.get_help(ctx)\n"
        "print(json.dumps([out.getvalue(), sorted(sys.modules)]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    text, loaded = json.loads(result.stdout)
    return text, loaded


def test_help_imports_no_command() -> None:
    text, loaded = _help_output(load_all=False)
    assert " search " in text
    commands = {f"casescope.cli.{module}" for module, *_ in COMMANDS.values()}
    assert sorted(commands & set(loaded)) == []
    assert "sqlalchemy" not in loaded


def test_help_lists_each_command_with_the_summary_of_its_own_help() -> None:
    """The listing is written without importing the commands: it must read as it would
    with every command loaded (the summary kept in COMMANDS is each command's own)."""
    without, _ = _help_output(load_all=False)
    with_all, loaded = _help_output(load_all=True)
    assert "casescope.cli.search" in loaded
    assert without == with_all


def test_help_lists_every_command_with_its_summary() -> None:
    result = CliRunner().invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    for name in COMMANDS:
        assert f" {name} " in result.output
        assert load_command(name).get_short_help_str()


def _leaf_commands(command: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, object]]:
    if hasattr(command, "list_commands"):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            yield from _leaf_commands(command.get_command(ctx, name), (*path, name))
    else:
        yield " ".join(path), command


def test_every_summary_is_one_paragraph_line() -> None:
    """A command's first help paragraph is its one-line summary in command lists; a line
    break there is drawn as a break mid-sentence (`casescope --help` showed four)."""
    broken = [
        name
        for name, command in _leaf_commands(typer.main.get_command(app))
        if "\n" in (command.help or "").strip().split("\n\n")[0]
    ]
    assert not broken


def test_unknown_command_is_refused() -> None:
    result = CliRunner().invoke(app, ["no-such-command"])
    assert result.exit_code != 0
    assert "No such command" in result.output


def test_a_query_starting_with_a_dash_is_shown_where_it_goes() -> None:
    result = CliRunner().invoke(app, ["search", "--case", "c", "-EventID:4624"], terminal_width=200)
    assert result.exit_code == 2
    assert "No such option: -E" in result.output
    assert "casescope search --case CASE [OPTIONS] -- -EventID:4624" in result.output


def test_an_unknown_long_option_of_search_stays_a_plain_error() -> None:
    result = CliRunner().invoke(app, ["search", "--case", "c", "--limt", "3", "x"])
    assert result.exit_code == 2
    assert "--limt" in result.output and "after '--'" not in result.output

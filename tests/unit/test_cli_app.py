"""The `casescope` command imports a command's module only when that command runs."""

from __future__ import annotations

import json
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

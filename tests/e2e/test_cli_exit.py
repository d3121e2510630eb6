"""A command that opened the event index ends without chDB's teardown (`cli.app.exit_now`),
and ends as any other: its output complete, its exit code kept, the atexit handlers run.

A `sitecustomize` on the command's path leaves two marks: one from an atexit handler, one
from an object freed when the interpreter finalises its modules (what `os._exit` skips).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from casescope.model.tables import EvidenceFile
from tests.e2e.conftest import Cli

MARKS = """
import atexit, os

_folder = os.environ["EXIT_MARKS"]


def _mark(name, folder=_folder, join=os.path.join, open=open):
    with open(join(folder, name), "w") as f:
        f.write("x")


atexit.register(_mark, "atexit")


class _Finalised:
    def __del__(self, mark=_mark):  # bound now: module globals are gone by then
        mark("finalised")


_witness = _Finalised()
"""


def _marked_cli(cli: Cli, tmp_path: Path) -> tuple[Cli, Path]:
    site, marks = tmp_path / "site", tmp_path / "marks"
    site.mkdir()
    marks.mkdir()
    (site / "sitecustomize.py").write_text(MARKS)
    return Cli(cli.home, {"PYTHONPATH": str(site), "EXIT_MARKS": str(marks)}), marks


def test_a_command_that_opened_the_index_skips_only_the_interpreter_teardown(
    cli: Cli, tmp_path: Path, attack_samples: Path
) -> None:
    sample = min(attack_samples.rglob("*.evtx"), key=lambda p: p.stat().st_size)
    cli.run("ingest", "--case", "t", str(sample))
    with cli.db().read() as session:
        events = session.scalar(select(func.sum(EvidenceFile.event_count)))
    marked, marks = _marked_cli(cli, tmp_path)

    exported = marked.run("export", "--case", "t", "--format", "jsonl")

    assert sorted(p.name for p in marks.iterdir()) == ["atexit"]  # handlers ran, no teardown
    assert events and len(exported.stdout.splitlines()) == events  # every line written out


def test_a_command_that_never_opened_the_index_exits_as_usual(cli: Cli, tmp_path: Path) -> None:
    marked, marks = _marked_cli(cli, tmp_path)

    missing = marked.run("files", "--case", "nosuch", check=False)

    assert missing.returncode == 1 and "no case named" in missing.stderr
    assert sorted(p.name for p in marks.iterdir()) == ["atexit", "finalised"]

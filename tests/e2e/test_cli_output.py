"""What the CLI prints is safe and says what happened: strings from evidence and from users
are shown as they are (no Rich markup, no terminal control sequences), mistakes get one clear
line (no traceback), and nothing found in a folder is skipped without a word."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from casescope.model.enums import AuditAction, FileStatus
from casescope.model.tables import AuditRecord, Case, EvidenceFile
from tests.e2e.conftest import Cli

HOSTILE = "evil\x1b]0;PWNED\x07\x1b[2J\x1b[31mred\x9b[0m invoice\u202efdp.exe\u2028x"
#: Characters that reorder or break the text after them on screen (bidi controls, separators).
REORDERING = ("\u202e", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069", "\u200f", "\u2028")


def _clean_terminal_output(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
    assert not [c for c in REORDERING if c in text]
    assert "Traceback" not in text


def test_markup_in_a_case_name_is_printed_as_it_is(cli: Cli) -> None:
    created = cli.run("case", "create", "[/bold]")
    assert "[/bold]" in created.stdout
    # the same commands' other answers in this process (`Cli.invoke`): `case list` and the
    # first create are the real processes
    created = cli.invoke("case", "create", "[red]x[/red] y")
    assert created.returncode == 0 and "[red]x[/red] y" in created.stdout
    listed = cli.run("case", "list")
    assert "[/bold]" in listed.stdout and "[red]x[/red] y" in listed.stdout
    duplicate = cli.invoke("case", "create", "[/bold]")
    assert duplicate.returncode == 1 and "[/bold]" in duplicate.stderr
    _clean_terminal_output(duplicate.stderr)


def test_control_sequences_in_events_reach_the_terminal_as_visible_escapes(
    cli: Cli, tmp_path: Path
) -> None:
    events = tmp_path / "hostile.jsonl"
    record = {"@timestamp": "2024-05-01T10:00:00Z", "host": HOSTILE, "user": "a\x00b"}
    events.write_text(json.dumps(record) + "\n")
    cli.run("ingest", "--case", "esc", str(events))
    table = cli.run("search", "--case", "esc", "*").stdout
    _clean_terminal_output(table)
    assert "\\x1b]0;PWNED\\x07" in table and "\\x00" not in table.replace("a\\x00b", "")
    assert "a\\x00b" in table
    assert "invoice\\u202efdp.exe" in "".join(table.split())  # shown, not acted on
    # the data formats keep the data: JSONL escapes it, CSV holds the bytes as they were
    jsonl = cli.invoke("search", "--case", "esc", "*", "--format", "jsonl").stdout
    assert json.loads(jsonl.splitlines()[0])["computer"] == HOSTILE


def test_links_and_special_files_in_a_folder_are_reported_not_skipped(
    cli: Cli, attack_samples: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "links"
    folder.mkdir()
    sample = next(attack_samples.rglob("*.evtx"))
    (folder / "real.evtx").write_bytes(sample.read_bytes())
    (folder / "file-link.evtx").symlink_to(sample)
    (folder / "folder-link").symlink_to(attack_samples)
    (folder / "dangling.evtx").symlink_to(tmp_path / "gone.evtx")
    os.mkfifo(folder / "pipe")
    proc = cli.run("ingest", "--case", "links", str(folder))
    assert "5 files: 1 queued" in proc.stdout and "4 rejected" in proc.stdout
    assert "symbolic link: not followed" in proc.stdout
    assert "link to a folder: not followed" in proc.stdout
    assert "symbolic link to a missing target" in proc.stdout
    assert "not a regular file" in proc.stdout
    with cli.db().session() as session:
        refused = session.scalars(
            select(AuditRecord.detail).where(AuditRecord.action == AuditAction.INTAKE_REFUSED)
        ).all()
    assert len(refused) == 4
    # and later, from the audit log
    audited = cli.run(
        "audit", "--case", "links", "--action", "intake.refused", "--format", "jsonl"
    ).stdout.splitlines()
    assert sorted(json.loads(line)["detail"] for line in audited) == sorted(refused)
    assert {json.loads(line)["action"] for line in audited} == {"intake.refused"}
    # the same command's other answers, in this process (`Cli.invoke`): its output, not a
    # process of its own, is the point
    table = cli.invoke("audit", "--case", "links", "--action", "intake.refused").stdout
    assert "pipe" in table and "not a regular file" in table and "intake.refused" in table
    # the old name, in older notes and scripts, still finds them (deprecated)
    old = cli.invoke("audit", "--case", "links", "--action", "intake_refused", "--format", "jsonl")
    assert old.stdout.splitlines() == audited
    wrong = cli.invoke("audit", "--action", "intake.rejected")
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr
    assert "'intake.rejected'" in wrong.stderr and "intake.refused" in wrong.stderr
    assert "step.indexing" in wrong.stderr  # the choices are listed
    unknown = cli.invoke("audit", "--case", "nope")
    assert unknown.returncode == 1 and "nope" in unknown.stderr
    # a link named on the command line is the analyst's choice: followed
    proc = cli.run("ingest", "--case", "links2", str(folder / "file-link.evtx"))
    assert "1 files: 1 queued" in proc.stdout


def test_mistakes_get_one_clear_line_and_change_nothing(
    cli: Cli, attack_samples: Path, tmp_path: Path
) -> None:
    sample = next(attack_samples.rglob("*.evtx"))
    missing = cli.run("ingest", "--case", "typo", str(sample), str(tmp_path / "nope"), check=False)
    assert missing.returncode == 1
    assert f"no such file or folder: {tmp_path / 'nope'} (nothing was taken in)" in missing.stderr
    _clean_terminal_output(missing.stderr)
    with cli.db().session() as session:
        assert session.scalars(select(Case)).all() == []
        assert session.scalars(select(EvidenceFile)).all() == []
    # the other mistakes in this process (`Cli.invoke`): what they say is the point
    assert cli.invoke("ingest", "--case", "x", "--workers", "0", str(sample)).returncode == 2
    assert cli.invoke("worker", "--workers", "-1").returncode == 2

    cli.run("ingest", "--case", "ok", str(sample))
    into_folder = cli.invoke("export", "--case", "ok", "--format", "csv", "-o", str(tmp_path))
    assert into_folder.returncode == 1 and "cannot write the export to" in into_folder.stderr
    _clean_terminal_output(into_folder.stderr)
    unknown = cli.invoke("reindex", "--case", "ok", "--file", "999999")
    assert unknown.returncode == 1 and "no file 999999 in this case" in unknown.stderr
    span = ("--from", "2024-02-01", "--to", "2024-01-01")
    backwards = cli.invoke("search", "--case", "ok", "*", *span)
    assert backwards.returncode == 1 and "is after --to" in backwards.stderr


def test_a_file_of_blank_lines_is_empty_not_junk(cli: Cli, tmp_path: Path) -> None:
    blank = tmp_path / "blank.jsonl"
    blank.write_bytes(b"\xef\xbb\xbf\n\n   \r\n\n")
    proc = cli.run("ingest", "--case", "blank", str(blank))
    assert "1 empty" in proc.stdout
    with cli.db().session() as session:
        row = session.scalars(select(EvidenceFile)).one()
    assert row.status is FileStatus.COMPLETED and row.hidden


def test_piped_tables_are_not_cut_at_80_columns(cli: Cli, attack_samples: Path) -> None:
    sample = max(attack_samples.rglob("*.evtx"), key=lambda p: p.stat().st_size)
    cli.run("ingest", "--case", "wide", str(sample))
    env = {k: v for k, v in cli.env.items() if k != "COLUMNS"}  # as in `casescope files | less`
    for extra in ({}, {"COLUMNS": "80"}):
        listed = subprocess.run(
            [sys.executable, "-m", "casescope", "files", "--case", "wide"],
            env={**env, **extra},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "completed" in listed and "…" not in listed  # folded where needed, never cut
        assert sample.stem[:8] in listed
    assert max(map(len, listed.splitlines())) <= 80  # COLUMNS still wins


def test_a_long_list_of_refusals_says_where_the_rest_are(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "many links"
    folder.mkdir()
    for n in range(102):
        (folder / f"gone-{n}.evtx").symlink_to(tmp_path / f"missing-{n}.evtx")
    proc = cli.run("ingest", "--case", "many links", str(folder), check=False)
    assert "102 rejected" in proc.stdout
    hint = "... and 2 more rejected: casescope audit --case 'many links' --action intake.refused"
    assert hint in proc.stdout
    audited = cli.invoke(  # what the real ingest audited, read in this process
        "audit", "--case", "many links", "--action", "intake.refused", "--format", "jsonl"
    )
    assert len(audited.stdout.splitlines()) == 102


def test_markup_in_a_case_name_is_literal_in_the_title_of_the_deletion_report(cli: Cli) -> None:
    name = "[red]a[/red] b"
    cli.invoke("case", "create", name)
    deleted = cli.run("case", "delete", name, "--yes")
    assert f"case {name!r}" in deleted.stdout

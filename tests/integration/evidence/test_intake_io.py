"""What intake does to the file system per file: each input opened once, its copy never read
back, and the same records as reading it all again would give.

Opens are counted with a CPython audit hook (the `open` event fires for every `open()`,
whatever opens the file), active only inside `_opens_during`.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from casescope.config import Settings
from casescope.evidence.intake import ingest_paths
from casescope.model.db import Database
from casescope.parse.sniff import detect_file_type
from casescope.services.cases import create_case
from tests.integration.evidence.conftest import make_zip, rows_by_original, sha256

_recording: list[Counter[str]] = []


def _hook(event: str, args: tuple) -> None:
    if _recording and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
        _recording[-1][os.fsdecode(args[0])] += 1


sys.addaudithook(_hook)  # a hook stays for the process's life: it counts only when asked


@contextmanager
def _opens_during() -> Iterator[Counter[str]]:
    opened: Counter[str] = Counter()
    _recording.append(opened)
    try:
        yield opened
    finally:
        _recording.remove(opened)


def _evidence(folder: Path, samples: list[Path]) -> Path:
    """EVTX samples, an NDJSON and a CSV file, a text file, a zip, in two sub-folders."""
    for n, sample in enumerate(samples):
        target = folder / ("a" if n % 2 else "b") / sample.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sample, target)
    (folder / "a" / "edr.jsonl").write_text('{"EventTime": "2024-01-01T00:00:00Z", "x": 1}\n' * 3)
    (folder / "b" / "proxy.csv").write_text("time,host,url\n2024-01-01,h1,/a\n2024-01-02,h2,/b\n")
    (folder / "b" / "notes.txt").write_text("not evidence\n")
    make_zip(folder / "a" / "more.zip", {"inner/one.evtx": samples[0], "two.jsonl": b'{"a": 1}\n'})
    return folder


def test_intake_opens_each_input_once_and_tells_formats_as_reading_the_copies_would(
    settings: Settings, db: Database, tmp_path: Path, samples: list[Path]
) -> None:
    evidence = _evidence(tmp_path / "evidence", samples)
    inputs = sorted(str(p) for p in evidence.rglob("*") if p.is_file())

    with _opens_during() as opened:
        report = ingest_paths(db, settings, create_case(db, "io"), [evidence])

    assert report.rejected == [(str(evidence / "b" / "notes.txt"), _NOT_EVIDENCE)]
    loose = [path for path in inputs if not path.endswith(".zip")]
    assert {path: opened[path] for path in loose} == dict.fromkeys(loose, 1)
    rows = rows_by_original(db)
    # the copies were written and renamed into place, never opened again to be sniffed
    assert not [path for path in opened if path.startswith(str(settings.evidence_dir))]
    archive, again = evidence / "a" / "more.zip", str(evidence / "b" / samples[0].name)
    members = [f"{archive}!inner/one.evtx", f"{archive}!two.jsonl"]
    assert sorted(rows) == sorted([*(set(loose) - {again}), *members])
    assert [path for path, _ in report.duplicates] == [again]  # a/ is taken in before b/
    for original, row in rows.items():
        stored = Path(row.stored_path)
        assert row.sha256 == sha256(stored)
        assert row.file_type is detect_file_type(stored), original  # as reading the copy says


_NOT_EVIDENCE = "not recognised as evidence (EVTX, NDJSON/JSONL or CSV) by its content"


def test_the_original_path_has_no_link_in_it_and_refusals_keep_the_name_given(
    settings: Settings, db: Database, tmp_path: Path, samples: list[Path]
) -> None:
    real = _evidence(tmp_path / "real", samples[:2])
    (tmp_path / "via").symlink_to(real)  # the analyst names the folder through a link
    (real / "b" / "dangling").symlink_to(tmp_path / "nowhere")

    report = ingest_paths(db, settings, create_case(db, "links"), [tmp_path / "via"])

    rows = rows_by_original(db)
    assert str(real / "a" / samples[1].name) in rows
    assert not [path for path in rows if "/via/" in path]
    assert (str(tmp_path / "via" / "b" / "dangling"), "symbolic link to a missing target") in (
        report.rejected
    )

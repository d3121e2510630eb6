"""The index owner gives back the pages of chDB's library it does not use (store/pages.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from casescope.config import Settings
from casescope.model.db import Database
from casescope.store.index import ChdbIndex
from casescope.store.loader import TRIM_BELOW_ROWS, load_pending
from casescope.store.pages import _read_only_ranges, page_out_library
from tests.integration.conftest import add_files
from tests.integration.test_loader import make_batch, mark_ready, write_segment

#: Run in a fresh interpreter: pages this test process maps too would be shared, and the
#: kernel leaves shared pages alone.
_PROBE = """
import json, sys
from pathlib import Path
from casescope.store import index as index_module

def file_kb():
    for line in open("/proc/self/status"):
        if line.startswith("RssFile:"):
            return int(line.split()[1])

index = index_module.ChdbIndex(Path(sys.argv[1]), memory_mb=480)
index.execute(
    "INSERT INTO casescope.events (case_id, file_id, seq, ts, raw) VALUES (1, 1, 0, now64(6), 'x')"
)
before = file_kb()
index_module.TRIM_INTERVAL_S = index_module.TRIM_FILE_MB = 0
index.trim_memory()
after = file_kb()
count = index.scalar("SELECT count() FROM casescope.events", {})
print(json.dumps({"before": before, "after": after, "count": count}))
index.close()
"""


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_trimmed_owner_maps_less_of_the_library_and_still_works(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path / "index")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["count"] == 1
    assert figures["after"] < figures["before"]


def test_read_only_ranges_skip_writable_and_other_mappings(tmp_path: Path) -> None:
    maps = tmp_path / "maps"
    maps.write_text(
        "7f0000000000-7f0000100000 r--p 00000000 fd:00 1 /x/chdb/_chdb.abi3.so\n"
        "7f0000100000-7f0000300000 r-xp 00100000 fd:00 1 /x/chdb/_chdb.abi3.so\n"
        "7f0000300000-7f0000310000 rw-p 00300000 fd:00 1 /x/chdb/_chdb.abi3.so\n"
        "7f0000400000-7f0000500000 r-xp 00000000 fd:00 2 /usr/lib/libc.so.6\n"
        "7f0000600000-7f0000700000 rw-p 00000000 00:00 0 \n"
    )
    assert _read_only_ranges("_chdb.abi3.so", maps) == [
        (0x7F0000000000, 0x7F0000100000),
        (0x7F0000100000, 0x7F0000300000),
    ]
    assert page_out_library("no-such-library.so", maps) == 0


class CountingIndex(ChdbIndex):
    """The real index, counting how often the loader asks it to trim."""

    trims = 0

    def trim_memory(self) -> None:
        type(self).trims += 1
        super().trim_memory()


def test_loader_trims_before_an_insert_that_would_be_small(
    settings: Settings, db: Database
) -> None:
    ids = add_files(db, 2)
    for n, file_id in enumerate(ids):
        mark_ready(db, file_id, write_segment(settings, f"{n:064x}", make_batch(50, "t")), 50)
    index = CountingIndex(settings.index_dir)
    try:
        CountingIndex.trims = 0
        roomy = settings.model_copy(update={"load_batch_rows": 10 * TRIM_BELOW_ROWS})
        tight = settings.model_copy(update={"index_memory_mb": 300})  # the least allowed
        load_pending(db, index, roomy.model_copy(update={"index_memory_mb": 100_000}))
        assert CountingIndex.trims == 0  # plenty of room: no trim
        mark_ready(db, ids[0], write_segment(settings, "f" * 64, make_batch(50, "u")), 50)
        report = load_pending(db, index, tight)
        assert report.files == 1
        assert CountingIndex.trims == 1
        assert index.counts_by_file(1) == {ids[0]: 50, ids[1]: 50}
    finally:
        index.close()


def test_trimming_is_rate_limited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dropped pages that are still used are read again: at most one trim per interval."""
    from casescope.store import index as index_module

    calls: list[str] = []
    monkeypatch.setattr(index_module, "page_out_library", lambda name: calls.append(name) or 0)
    index = ChdbIndex(tmp_path / "index")
    try:
        assert calls == ["_chdb.abi3.so"]  # at open
        index.trim_memory()
        assert len(calls) == 1  # within the interval: nothing
        monkeypatch.setattr(index_module, "TRIM_INTERVAL_S", 0.0)
        monkeypatch.setattr(index_module, "TRIM_FILE_MB", 0)
        index.trim_memory()
        assert len(calls) == 2
        monkeypatch.setattr(index_module, "TRIM_FILE_MB", 10**9)  # little mapped: nothing
        index.trim_memory()
        assert len(calls) == 2
    finally:
        index.close()


def test_a_short_lived_owner_leaves_the_library_mapped_until_it_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command that exits within a second frees its pages then: paging the library out
    at open only costs it the advice and the faults of its one query (bench/cli.py)."""
    from casescope.store import index as index_module

    calls: list[str] = []
    monkeypatch.setattr(index_module, "page_out_library", lambda name: calls.append(name) or 0)
    index = ChdbIndex(tmp_path / "index", page_out=False)
    try:
        assert calls == []
        assert index.count() == 0
        index.trim_memory()  # what a load asks for: the first trim is not held back
        assert calls == ["_chdb.abi3.so"]
    finally:
        index.close()

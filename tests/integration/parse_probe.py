"""Child process of `test_large_files`: read one file as a worker does, print its peak RSS.

`python -m tests.integration.parse_probe PATH [--keep]`, with CASESCOPE_HOME and
CASESCOPE_BATCH_SIZE set: the file is parsed by `casescope.parse` at the configured batch
size into a segment, as the worker's indexing step does (without Sigma and IOCs). Prints one
JSON line: rows, the RSS after the imports and the peak RSS (`VmHWM`), in MB. `--keep`
also holds every batch: memory that grows with the file, on purpose (the test's control).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import psutil
import pyarrow as pa

from casescope.config import Settings
from casescope.parse.files import iter_batches
from casescope.parse.report import ParseReport
from casescope.parse.sniff import detect_file_type
from casescope.store.segments import SegmentWriter, segment_path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", type=Path)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    settings = Settings()
    settings.ensure_dirs()
    base = psutil.Process().memory_info().rss / 2**20
    report = ParseReport()
    kept: list[pa.RecordBatch] = []
    final = segment_path(settings.segments_dir, "0" * 64, 1)
    with SegmentWriter(final, settings.tmp_dir) as writer:
        batches = iter_batches(
            args.path,
            detect_file_type(args.path),
            report,
            batch_size=settings.batch_size,
            max_line_bytes=settings.max_line_bytes,
        )
        for batch in batches:
            writer.write(batch)
            if args.keep:
                kept.append(batch)
        writer.commit(sync=False)
    print(json.dumps({"rows": writer.rows, "base_mb": base, "peak_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process image's peak RSS. Not `ru_maxrss`: Linux carries that across exec, so a
    child of a large pytest process reported the parent's size (1,048 MB for every file)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status")


if __name__ == "__main__":
    main()

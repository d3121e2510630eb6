"""Re-read one EVTX chunk whose checksum failed, in a child process with a time limit.

The main read validates chunk checksums, because on some damaged chunks the `evtx` crate
loops forever while holding the GIL (omerbenamram/evtx#290: not a panic, not interruptible
from Python). A chunk that fails its checksum is often still mostly readable (one flipped
bit loses nothing), so it is written alone into a small EVTX file and read without checksum
validation by a child Python process (`evtx_salvage_child`) killed after `timeout_s`.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from casescope.parse.evtx_layout import CHUNK_SIZE, FILE_HEADER_SIZE, file_header

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 15.0


@dataclass
class Salvaged:
    """What a child read from one chunk: raw JSON records, crate errors, whether it hung."""

    records: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    timed_out: bool = False


def salvage_chunk(path: Path, chunk: int, timeout_s: float = DEFAULT_TIMEOUT_S) -> Salvaged:
    """The records the crate can read from chunk number `chunk` (0-based) of `path`."""
    with path.open("rb") as handle:
        header = handle.read(FILE_HEADER_SIZE)
        handle.seek(FILE_HEADER_SIZE + chunk * CHUNK_SIZE)
        data = handle.read(CHUNK_SIZE)
    if len(header) < FILE_HEADER_SIZE or len(data) < CHUNK_SIZE:
        return Salvaged(errors=[f"chunk {chunk} is not in the file"])
    try:
        one_chunk = file_header(header, chunks=1)
    except ValueError as exc:
        return Salvaged(errors=[f"chunk {chunk}: {exc}"])
    with tempfile.TemporaryDirectory(prefix="casescope-salvage-") as tmp:
        single = Path(tmp) / "chunk.evtx"
        single.write_bytes(one_chunk + data)
        return _run_child(single, timeout_s)


def _run_child(single: Path, timeout_s: float) -> Salvaged:
    command = [sys.executable, "-P", "-m", "casescope.parse.evtx_salvage_child", str(single)]
    timed_out = False
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout_s, check=False)
        stdout, stderr = done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:  # run() has killed the child
        stdout, stderr, timed_out = exc.stdout or b"", exc.stderr or b"", True
    # the last piece is "" after the final newline, or a record cut by the kill
    lines = stdout.decode("utf-8", errors="replace").split("\n")[:-1]
    errors = [e for e in stderr.decode("utf-8", errors="replace").splitlines() if e.strip()]
    return Salvaged(records=lines, errors=errors, timed_out=timed_out)

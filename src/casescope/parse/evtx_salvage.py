"""Re-read one EVTX chunk whose checksum failed, in a child process with a time limit.

The main read validates chunk checksums, because on some damaged chunks the `evtx` crate
loops forever while holding the GIL (omerbenamram/evtx#290: not a panic, not interruptible
from Python). A chunk that fails its checksum is often still mostly readable (one flipped
bit loses nothing), so it is written alone into a small EVTX file and read without checksum
validation by a child Python process that is killed after `timeout_s`.
"""

from __future__ import annotations

import logging
import struct
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

FILE_HEADER_SIZE = 4096
CHUNK_SIZE = 65536
DEFAULT_TIMEOUT_S = 15.0

# Runs in the child: the crate's JSON records on stdout (one per line; JSON has no raw
# newlines), its errors on stderr.
_CHILD = """
import sys, evtx
records = evtx.PyEvtxParser(sys.argv[1], number_of_threads=1).records_json()
while True:
    try:
        record = next(records)
    except StopIteration:
        break
    except Exception as exc:
        print(str(exc).replace(chr(10), " "), file=sys.stderr, flush=True)
        continue
    sys.stdout.write(record["data"] + chr(10))
    sys.stdout.flush()
"""


@dataclass
class Salvaged:
    """What a child read from one chunk: raw JSON records, crate errors, whether it hung."""

    records: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    timed_out: bool = False


def salvage_chunk(path: Path, chunk: int, timeout_s: float = DEFAULT_TIMEOUT_S) -> Salvaged:
    """The records the crate can read from chunk number `chunk` (0-based) of `path`."""
    with path.open("rb") as handle:
        header = bytearray(handle.read(FILE_HEADER_SIZE))
        handle.seek(FILE_HEADER_SIZE + chunk * CHUNK_SIZE)
        data = handle.read(CHUNK_SIZE)
    if len(header) < FILE_HEADER_SIZE or len(data) < CHUNK_SIZE:
        return Salvaged(errors=[f"chunk {chunk} is not in the file"])
    with tempfile.TemporaryDirectory(prefix="casescope-salvage-") as tmp:
        single = Path(tmp) / "chunk.evtx"
        single.write_bytes(_one_chunk_header(header) + data)
        return _run_child(single, timeout_s)


def _one_chunk_header(header: bytearray) -> bytes:
    """The file's header rewritten for a file holding one chunk (checksum recomputed)."""
    struct.pack_into("<QQ", header, 8, 0, 0)  # first and last chunk number
    struct.pack_into("<H", header, 42, 1)  # chunk count
    struct.pack_into("<I", header, 124, zlib.crc32(bytes(header[:120])))
    return bytes(header)


def _run_child(single: Path, timeout_s: float) -> Salvaged:
    command = [sys.executable, "-I", "-c", _CHILD, str(single)]
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

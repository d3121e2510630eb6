"""The child process of `evtx_salvage`: read one EVTX file without checksum validation.

Run as `python -P -m casescope.parse.evtx_salvage_child FILE`: the crate's JSON records on
stdout, one per line (JSON has no raw newlines), its errors on stderr, one per line. The
parent kills it after its time limit (the crate can loop forever on a damaged chunk).
"""

from __future__ import annotations

import sys

import evtx


def main(path: str) -> None:
    records = evtx.PyEvtxParser(path, number_of_threads=1).records_json()
    while True:
        try:
            record = next(records)
        except StopIteration:
            break
        except (RuntimeError, OSError, ValueError) as exc:  # what the crate raises per record
            sys.stderr.write(str(exc).replace("\n", " ") + "\n")
            sys.stderr.flush()
            continue
        sys.stdout.write(record["data"] + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1])

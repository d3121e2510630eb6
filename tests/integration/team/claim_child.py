"""Claim files for loading, say `held`, and keep the claims until killed (the claim tests).

`python -m tests.integration.team.claim_child 1 2`: claims files 1 and 2 (with SQLite: the
home's lease, which claims every file) on the test's CASESCOPE_* settings.
"""

from __future__ import annotations

import sys
import time

from casescope.config import Settings
from casescope.model.db import Database
from casescope.store.load_claims import load_claims


def main(file_ids: list[int]) -> None:
    db = Database(Settings())
    with load_claims(db) as claims:
        held = claims.locks.try_lock(file_ids)
        sys.stdout.write("held\n" if held == set(file_ids) else f"busy {sorted(held)}\n")
        sys.stdout.flush()
        while held:
            time.sleep(1)


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]])

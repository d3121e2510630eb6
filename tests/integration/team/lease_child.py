"""Take the team's load lease, say `held`, and keep it until killed (the lease test)."""

from __future__ import annotations

import sys
import time

from casescope.config import Settings
from casescope.model.db import Database
from casescope.store.load_lease import load_lease


def main() -> None:
    db = Database(Settings())
    with load_lease(db) as held:
        sys.stdout.write("held\n" if held else "busy\n")
        sys.stdout.flush()
        while held:
            time.sleep(1)


if __name__ == "__main__":
    main()

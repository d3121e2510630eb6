"""A loader process of the team-mode kill test, run with the test's CASESCOPE_* settings.

`python -m tests.integration.team.loader_child load`: `load_pending` on the index
CASESCOPE_INDEX_URL names, printing `inserted <rows>` after each INSERT it sends (the test
kills it after a few of them, mid-file).
`python -m tests.integration.team.loader_child inspect`: prints, as JSON, the events per
file, the distinct (file_id, seq) pairs and the files' index states.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import orjson
from sqlalchemy import select

from casescope.config import Settings
from casescope.model.db import Database
from casescope.model.tables import EvidenceFile
from casescope.store.events_sql import LoadItem
from casescope.store.loader import load_pending
from casescope.store.owner import open_index


def _announcing(load):  # type: ignore[no-untyped-def]
    """`load`, saying on stdout when each INSERT is done (the test's cue to kill)."""

    def announced(items: Sequence[LoadItem]) -> None:
        load(items)
        if not items:
            return
        sys.stdout.write(f"inserted {items[0].seq_from}-{items[0].seq_to}\n")
        sys.stdout.flush()

    return announced


def main(mode: str) -> None:
    settings = Settings()
    db = Database(settings)
    with open_index(settings, role="loader_child") as index:
        if mode == "load":
            index.load = _announcing(index.load)  # type: ignore[method-assign]
            report = load_pending(db, index, settings)
            sys.stdout.write(f"done {report.files} files\n")
            return
        with db.read() as session:
            states = dict(session.execute(select(EvidenceFile.id, EvidenceFile.index_state)).all())
        distinct = index.query_rows(
            "SELECT uniqExact(file_id, seq) AS n, count() AS rows FROM casescope.events", {}
        )[0]
        result = {
            "by_file": {str(k): v for k, v in index.counts_by_file(1).items()},
            "distinct": int(distinct["n"]),
            "rows": int(distinct["rows"]),
            "states": {str(k): str(v) for k, v in states.items()},
        }
        sys.stdout.write(orjson.dumps(result).decode())


if __name__ == "__main__":
    main(sys.argv[1])

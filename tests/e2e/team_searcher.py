"""A third process on the team's shared index, run with the test's CASESCOPE_* settings.

`python -m tests.e2e.team_searcher search STOP_FILE CASE_ID…`: searches the cases (a page
and its total, as `casescope search` does, and the events per file) over and over until
STOP_FILE exists, then prints, as JSON, how many searches it made and every error one of
them raised (the test expects none while other processes load).
`python -m tests.e2e.team_searcher inspect`: prints, as JSON, the events per file of the
whole index, its rows and its distinct (file_id, seq) pairs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import orjson

from casescope.config import Settings
from casescope.services.search import SearchRequest, search
from casescope.store.index import EventIndex
from casescope.store.owner import open_index

#: Pause between rounds of searches: the machine's two cores also run the loaders.
PAUSE_SECONDS = 0.05


def _search_until(index: EventIndex, stop: Path, case_ids: list[int]) -> dict:
    searches, errors = 0, []
    while not stop.exists():
        for case_id in case_ids:
            try:
                # the page and its total are two queries: a load may land between them
                rows, _total = search(index, SearchRequest(case_id, limit=25))
                assert len(rows) <= 25
                index.counts_by_file(case_id)
            except Exception as error:  # noqa: BLE001 (every error is the finding: the test lists it)
                errors.append(f"{type(error).__name__}: {error}")
            searches += 1
        time.sleep(PAUSE_SECONDS)
    return {"searches": searches, "errors": errors}


def _inspect(index: EventIndex) -> dict:
    rows = index.query_rows(
        "SELECT file_id, count() AS n FROM casescope.events GROUP BY file_id", {}
    )
    totals = index.query_rows(
        "SELECT uniqExact(file_id, seq) AS distinct, count() AS rows FROM casescope.events", {}
    )[0]
    return {
        "by_file": {str(row["file_id"]): int(row["n"]) for row in rows},
        "distinct": int(totals["distinct"]),
        "rows": int(totals["rows"]),
    }


def main(mode: str, *args: str) -> None:
    with open_index(Settings(), role="team_searcher") as index:
        if mode == "search":
            result = _search_until(index, Path(args[0]), [int(a) for a in args[1:]])
        else:
            result = _inspect(index)
    sys.stdout.write(orjson.dumps(result).decode())


if __name__ == "__main__":
    main(*sys.argv[1:])

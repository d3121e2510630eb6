"""Run the store's core operations on one index transport and print what they answer (JSON).

`python -m tests.integration.team.probe HOME SAMPLES [INDEX_URL]`: segments of the sample
EVTX files are written under HOME, loaded into the index INDEX_URL names (none: the
embedded chDB under HOME) and queried with the store's own builders: counts, a search
page, facets, the timeline, an export, then a delete. A process of its own per transport:
chDB holds one engine path per process (tests/integration/team/test_server_index.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from contextlib import nullcontext
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from casescope.errors import QueryTimeoutError
from casescope.hunt.normalise import normalise
from casescope.parse.evtx import iter_evtx
from casescope.parse.report import ParseReport
from casescope.services import event_search as es
from casescope.services.search import ExportFormat, SearchRequest, build_where, export_lines
from casescope.services.search import search as search_page
from casescope.services.timeline import TimelineRequest, timeline
from casescope.store.events_sql import LoadItem
from casescope.store.facets import value_counts
from casescope.store.index import ChdbIndex, EventIndex
from casescope.store.index_url import parse_index_url
from casescope.store.ioc_hunt import stream_ioc_hits
from casescope.store.query_bounds import QueryTimeouts
from casescope.store.segments import SegmentWriter, read_segment
from casescope.store.server_index import ClickHouseServerIndex

#: Sample files (relative to the samples folder) and the file id each is loaded as.
FILES = {
    1: "Execution/Exec_sysmon_meterpreter_reversetcp_msipackage.evtx",
    2: "Execution/Sysmon_Exec_CompiledHTML.evtx",
    3: "AutomatedTestingTools/PanacheSysmon_vs_AtomicRedTeam01.evtx",
    4: "Command and Control/bits_openvpn.evtx",
}
#: IOCs hunted in the index (a file name and an IP that the samples hold).
IOCS = ("cmd.exe", "10.0.2.15", "hh.exe")
#: File 3 is loaded in slices of this many events, as the loader cuts a large file.
SLICE = 100


def write_segments(home: Path, samples: Path) -> dict[int, tuple[Path, int]]:
    """Each sample's segment and its event count."""
    segments = {}
    for file_id, name in FILES.items():
        path = home / "segments" / f"f{file_id}.parquet"
        rows = 0
        with SegmentWriter(path, home / "tmp") as writer:
            for batch in iter_evtx(samples / name, ParseReport(), 500):
                writer.write(batch)
                rows += batch.num_rows
            segments[file_id] = (writer.commit(), rows)
    return segments


def load(index: EventIndex, segments: dict[int, tuple[Path, int]]) -> None:
    index.load([LoadItem(1, fid, path) for fid, (path, _) in segments.items() if fid != 3])
    path, rows = segments[3]
    for start in range(0, rows, SLICE):
        end = None if start + SLICE >= rows else start + SLICE
        index.load([LoadItem(1, 3, path, start, end)])


def write_bundle(home: Path, segment: Path) -> Path:
    """A group load bundle holding one segment's events twice: as file 5 and as file 6."""
    table = pa.Table.from_batches(list(read_segment(segment)))
    copies = []
    for file_id in (5, 6):
        copy = table.append_column("case_id", pa.array([1] * table.num_rows, pa.uint32()))
        copies.append(
            copy.append_column("file_id", pa.array([file_id] * table.num_rows, pa.uint64()))
        )
    path = home / "bundles" / "b1.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.concat_tables(copies), path)
    return path


def hunt(index: EventIndex) -> list:
    """Index-side IOC hunt (Arrow stream with array parameters): its hits."""
    iocs = [dataclasses.replace(normalise(value), id=n) for n, value in enumerate(IOCS, 1)]
    batches = stream_ioc_hits(index, iocs, 1, sorted(FILES))
    rows = [row for batch in batches for row in batch.to_pylist()]
    return sorted((r["file_id"], r["seq"], r["ioc_id"], r["field"]) for r in rows)


def timeout(index: EventIndex) -> str:
    """What a query past its time bound ends as."""
    sql = "SELECT count() AS n FROM numbers(100000000000) WHERE sipHash64(number) = 0"
    try:
        index.query_rows(sql, {})
    except QueryTimeoutError as error:
        return type(error).__name__
    return "no timeout"


def answers(index: EventIndex) -> dict:
    everything = build_where(SearchRequest(case_id=1))
    rows, total = search_page(index, SearchRequest(case_id=1, query="EventID:1", limit=25))
    exported = [
        bytes(export_lines(batch))
        for batch in es.export_chunks(lambda: nullcontext(index), everything, ExportFormat.JSONL)
    ]
    line = timeline(index, everything, TimelineRequest(most=50))
    return {
        "count": index.count(),
        "by_file": {str(k): v for k, v in sorted(index.counts_by_file(1).items())},
        "distinct": int(
            index.query_rows("SELECT uniqExact(file_id, seq) AS n FROM casescope.events", {})[0][
                "n"
            ]
        ),
        "search_total": total,
        "search_rows": rows,
        "facet": value_counts(index, everything, "event_id", 10, None).values,
        "field_facet": value_counts(index, everything, "Image", 5, 0).values,
        "timeline": [[str(b.start), b.events] for b in line.buckets],
        "export_sha256": hashlib.sha256(b"".join(exported)).hexdigest(),
        "files_present": sorted(index.files_present([1, 2, 3, 4, 5])),
        "slice_present": index.rows_present(LoadItem(1, 3, Path("x"), SLICE, 2 * SLICE)),
        "ddl_version": index.ddl_version(),
        "ioc_hits": hunt(index),
    }


def main(home: Path, samples: Path, url: str | None) -> None:
    segments = write_segments(home, samples)
    target = parse_index_url(url)
    index: EventIndex = (
        ClickHouseServerIndex(target) if url else ChdbIndex(home / "index", memory_mb=480)
    )
    brief = QueryTimeouts(interactive=0.05)
    hasty: EventIndex = (
        ClickHouseServerIndex(target, brief, create=False)
        if url
        else ChdbIndex(home / "index", memory_mb=480, timeouts=brief)
    )
    try:
        load(index, segments)
        result = {"events": {str(k): rows for k, (_, rows) in segments.items()}}
        result["timeout"] = timeout(hasty)
        result["before"] = answers(index)
        index.load_bundles({write_bundle(home, segments[1][0]): [LoadItem(1, 5, Path("b"))]})
        result["bundle"] = {str(k): v for k, v in sorted(index.counts_by_file(1).items())}
        index.delete_files([2])
        result["after_delete"] = {
            "by_file": {str(k): v for k, v in sorted(index.counts_by_file(1).items())},
            "parts": index.compact() > 0,
        }
        index.delete_case(1)  # a case deletion
        result["after_case_delete"] = index.count(1)
    finally:
        hasty.close()
        index.close()
    sys.stdout.write(orjson.dumps(result, default=str).decode())


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)

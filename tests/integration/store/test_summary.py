"""Event summaries: the table in Python and in ClickHouse SQL say the same of every sample
event, and say what an analyst reads first for the common kinds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from casescope.model.enums import FileType
from casescope.parse.files import iter_batches
from casescope.parse.report import ParseReport
from casescope.store.index import ChdbIndex
from casescope.store.summary import SEP, SUMMARY_FIELDS, VALUE_CHARS, summarise, summary_sql
from tests.integration.conftest import index_of


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory, attack_samples: Path) -> Iterator[ChdbIndex]:
    """Every attack sample's events in one real chDB index."""
    batches = []
    for path in sorted(attack_samples.rglob("*.evtx")):
        batches.extend(iter_batches(path, FileType.EVTX, ParseReport()))
    index = index_of(tmp_path_factory.mktemp("summary"), pa.concat_batches(batches))
    yield index
    index.close()


def test_python_and_sql_summaries_agree_on_every_sample_event(samples: ChdbIndex) -> None:
    rows = samples.query_rows(
        f"SELECT channel, provider, event_id, fields, {summary_sql()} AS sql_summary "
        "FROM casescope.events"
    )
    assert len(rows) > 8000
    differ = [
        r
        for r in rows
        if summarise(r["channel"], r["provider"], r["event_id"], r["fields"]) != r["sql_summary"]
    ]
    assert differ == []
    assert sum(1 for r in rows if r["sql_summary"]) > 0.9 * len(rows)


def test_the_table_covers_the_sixty_most_frequent_kinds_of_the_samples(samples: ChdbIndex) -> None:
    kinds = samples.query_rows(
        "SELECT channel, provider, event_id, count() AS n FROM casescope.events "
        "WHERE length(fields) > 0 "  # kinds with no data have nothing to summarise
        "GROUP BY channel, provider, event_id ORDER BY n DESC, event_id LIMIT 60"
    )
    uncovered = [
        k
        for k in kinds
        if (k["channel"], k["event_id"]) not in SUMMARY_FIELDS
        and (k["provider"], k["event_id"]) not in SUMMARY_FIELDS
    ]
    assert uncovered == []


def test_a_logon_says_who_how_and_from_where() -> None:
    fields = {
        "SubjectUserName": "-",
        "TargetUserName": "alice",
        "TargetDomainName": "CORP",
        "LogonType": "3",
        "IpAddress": "10.1.2.3",
        "WorkstationName": "-",
        "LogonProcessName": "NtLmSsp",
    }
    line = summarise("Security", "Microsoft-Windows-Security-Auditing", 4624, fields)
    assert line == SEP.join(
        ["TargetUserName: alice", "TargetDomainName: CORP", "LogonType: 3", "IpAddress: 10.1.2.3"]
    )


def test_a_provider_without_a_channel_is_found_by_provider() -> None:
    line = summarise("", "Microsoft-Windows-RPC", 6, {"Endpoint": "lsarpc", "ProcNum": "1"})
    assert line == "Endpoint: lsarpc ¦ ProcNum: 1"


def test_unknown_events_fall_back_to_useful_then_first_fields() -> None:
    ndjson = {"host.name": "ws1", "process.command_line": "cmd /c whoami", "n": "7"}
    assert summarise("", "", None, ndjson) == "process.command_line: cmd /c whoami"
    plain = {"a": "1", "b": "", "c": "3", "d": "4", "e": "5", "f": "6"}
    assert summarise("X", "Y", 1, plain) == SEP.join(["a: 1", "c: 3", "d: 4", "e: 5"])


def test_long_values_are_cut_and_newlines_flattened() -> None:
    script = "Write-Host 'a'\r\nInvoke-Mimikatz\n" + "x" * 1000
    line = summarise(
        "Microsoft-Windows-PowerShell/Operational", "", 4104, {"ScriptBlockText": script}
    )
    assert line.startswith("ScriptBlockText: Write-Host 'a' Invoke-Mimikatz x")
    assert len(line) == len("ScriptBlockText: ") + VALUE_CHARS

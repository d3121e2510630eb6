"""Helpers for the Sigma engine tests: hand-made event batches and one-rule rule sets."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pytest

from casescope.detect.engine import CompiledRuleSet, compile_rules
from casescope.detect.load import RuleLoad, load_document
from casescope.parse.schema import EVENT_SCHEMA

SNAPSHOT_DIRS = (
    "rules",
    "rules-emerging-threats",
    "rules-threat-hunting",
    "rules-dfir",
    "rules-compliance",
)
SYSMON = "Microsoft-Windows-Sysmon/Operational"
CORE = {
    "EventID": "event_id",
    "Channel": "channel",
    "Provider_Name": "provider",
    "Computer": "computer",
    "EventRecordID": "record_id",
    "Level": "level",
}
RULE_ID = "00000000-0000-0000-0000-000000000001"


def cache_dir(request: pytest.FixtureRequest) -> Path:
    """Where compiled rule sets are cached across test runs (pytest's cache folder, or a
    temporary folder when the cache plugin is off)."""
    cache = getattr(request.config, "cache", None)
    if cache is None:
        return request.getfixturevalue("tmp_path_factory").mktemp("casescope-sigma")
    return Path(cache.mkdir("casescope-sigma"))


def snapshot_sources(sigma_dir: Path) -> list[Path]:
    """Every rule folder of the SigmaHQ snapshot, however many of them it has."""
    return [sigma_dir / name for name in SNAPSHOT_DIRS if (sigma_dir / name).is_dir()]


def make_batch(events: list[Mapping[str, object]], first_seq: int = 0) -> pa.RecordBatch:
    """A batch of EVENT_SCHEMA from dicts of Sigma field names (core names go to columns)."""
    columns: dict[str, list[object]] = {name: [] for name in EVENT_SCHEMA.names}
    for number, event in enumerate(events):
        columns["seq"].append(first_seq + number)
        columns["ts"].append(None)
        for sigma, column in CORE.items():
            default = "" if column in ("channel", "provider", "computer") else None
            columns[column].append(event.get(sigma, default))
        columns["user_name"].append("")
        columns["user_sid"].append("")
        columns["fields"].append(
            [(k, str(v)) for k, v in event.items() if k not in CORE and v is not None]
        )
        columns["raw"].append("{}")
    arrays = [pa.array(columns[f.name], f.type) for f in EVENT_SCHEMA]
    return pa.RecordBatch.from_arrays(arrays, schema=EVENT_SCHEMA)


def rule_text(detection: str, logsource: str = "category: process_creation", **extra: str) -> str:
    """A minimal Windows rule around a `detection:` body (indented two spaces)."""
    lines = [
        "title: test rule",
        f"id: {extra.get('id', RULE_ID)}",
        "status: test",
        f"level: {extra.get('level', 'high')}",
        "tags: [attack.execution, attack.t1059.001]",
        f"logsource: {{product: windows, {logsource}}}",
        "detection:",
        detection.rstrip("\n"),
    ]
    return "\n".join(lines) + "\n"


def compile_text(*texts: str) -> CompiledRuleSet:
    """Compile rules given as YAML texts; fails the test if any does not load."""
    load = RuleLoad()
    for number, text in enumerate(texts):
        load_document(f"rule{number}.yml", text.encode(), load)
    assert not load.failures, load.failures
    return compile_rules(load)


def fired(ruleset: CompiledRuleSet, batch: pa.RecordBatch) -> list[int]:
    """Sorted seqs of the events any rule of the set fires on."""
    return sorted(set(ruleset.evaluate(batch).column("seq").to_pylist()))

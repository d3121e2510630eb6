"""A group's evaluation hands each file exactly the findings it gets evaluated alone.

`group.evaluate_together` runs Sigma and the IOC matcher once over the events of many
small files and gives each file its hits through the analyzers' `add_group_hits`; here the
real attack samples are evaluated both ways and every held detection and IOC hit row must
be the same, with each file's own `seq`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pyarrow as pa

from casescope.detect.active import ActiveRules
from casescope.detect.engine import CompiledRuleSet
from casescope.hunt.matcher import compile_iocs
from casescope.hunt.normalise import normalise
from casescope.jobs.analyzers import IocAnalyzer, SigmaAnalyzer
from casescope.jobs.context import Analyzer, FileInfo
from casescope.jobs.group import EventSink, Member, evaluate_together
from casescope.jobs.steps import StepLog, StepScope
from casescope.model.enums import FileType, Operation
from casescope.parse.files import iter_batches
from casescope.parse.report import ParseReport
from casescope.workqueue.queue import ClaimedJob

IOCS = ("cmd.exe", "powershell.exe", "rundll32.exe", "svchost.exe", "10.0.2.17", "SYSTEM")


def _file_events(paths: list[Path]) -> list[pa.RecordBatch]:
    """Each file's events as one batch, as a group member keeps them."""
    out = []
    for path in paths:
        sink = EventSink()
        for batch in iter_batches(path, FileType.EVTX, ParseReport()):
            sink.consume(batch)
        if sink.batches:
            out.append(pa.concat_batches(sink.batches))
    return out


def _analyzers(rules: ActiveRules, matcher: object) -> list[Analyzer]:
    return [SigmaAnalyzer(rules), IocAnalyzer(matcher, 1)]  # type: ignore[arg-type]


def _member(n: int, events: pa.RecordBatch, analyzers: list[Analyzer]) -> Member:
    info = FileInfo(n, 1, f"{n:064x}", Path(f"/evidence/{n}"), FileType.EVTX, None, {})
    log = StepLog(StepScope(1, n, n, "test"))
    member = Member(ClaimedJob(n, n, Operation.FULL, 1), info, analyzers, log)
    member.events = events
    return member


def _held(analyzers: list[Analyzer]) -> tuple[list[tuple[object, ...]], list[dict[str, object]]]:
    sigma, ioc = analyzers
    assert isinstance(sigma, SigmaAnalyzer) and isinstance(ioc, IocAnalyzer)
    detections = sorted(tuple(row.values()) for row in sigma._rows)
    return detections, sorted(ioc._rows, key=lambda r: (r["seq"], r["ioc_id"], r["field"]))


def test_group_evaluation_gives_each_file_its_own_findings(
    windows_rules: CompiledRuleSet, attack_samples: Path
) -> None:
    paths = sorted(attack_samples.rglob("*.evtx"))[::4]
    files = _file_events(paths)
    row_ids = {rule.id: n for n, rule in enumerate(windows_rules.rules, start=1)}
    rules = ActiveRules("test", windows_rules, row_ids)
    iocs = [replace(normalise(v), id=n) for n, v in enumerate(IOCS, start=1)]
    matcher = compile_iocs(iocs)

    alone = []
    for events in files:
        analyzers = _analyzers(rules, matcher)
        for analyzer in analyzers:
            analyzer.consume(events)
            analyzer.finish()
        alone.append(_held(analyzers))
    members = [_member(n, events, _analyzers(rules, matcher)) for n, events in enumerate(files)]
    evaluate_together(members)
    grouped = [_held(m.analyzers) for m in members]

    assert grouped == alone
    assert sum(len(d) for d, _ in alone) > 100 and sum(len(h) for _, h in alone) > 100
    # each file's findings carry its own seq: within its events, not the group's rows
    for events, (detections, hits) in zip(files, grouped, strict=True):
        assert all(h["seq"] < events.num_rows for h in hits)
        assert all(d[0] < events.num_rows for d in detections)

"""The Sigma analyzer's buffer: batches without the original record, same detections."""

from __future__ import annotations

import gc
import tracemalloc

import pyarrow as pa

from casescope.detect.active import ActiveRules
from casescope.detect.engine import CompiledRuleSet
from casescope.jobs.analyzers import RAW_COLUMN, SigmaAnalyzer


def _analyzer(ruleset: CompiledRuleSet, batch_events: int) -> SigmaAnalyzer:
    row_ids = {rule.id: n for n, rule in enumerate(ruleset.rules, start=1)}
    return SigmaAnalyzer(ActiveRules("test", ruleset, row_ids), batch_events=batch_events)


def test_buffer_drops_raw_and_finds_what_the_whole_batch_does(
    windows_rules: CompiledRuleSet, sample_batches: list[pa.RecordBatch]
) -> None:
    events = pa.Table.from_batches(sample_batches).combine_chunks()
    # one file's numbering: seq is the row number, as a parser gives it
    seq = events.schema.get_field_index("seq")
    events = events.set_column(seq, "seq", pa.array(range(len(events)), pa.uint64()))
    whole = events.to_batches()[0]
    expected = windows_rules.evaluate(whole)
    assert expected.num_rows > 100  # the samples fire many rules

    analyzer = _analyzer(windows_rules, batch_events=len(events) + 1)  # never flushes early
    for batch in events.to_batches(max_chunksize=1000):
        analyzer.consume(batch)
    assert analyzer._buffer and all(RAW_COLUMN not in b.schema.names for b in analyzer._buffer)
    analyzer.finish()

    found = sorted((row["seq"], row["rule_id"]) for row in analyzer._rows)
    ids = analyzer.active.row_ids
    wanted = sorted(
        (seq, ids[rule])
        for seq, rule in zip(
            expected.column("seq").to_pylist(), expected.column("rule_id").to_pylist(), strict=True
        )
    )
    assert found == wanted


#: What one held detection may take until `persist`: Arrow columns take ~60 bytes; a dict of
#: Python objects per detection took ~550 (123,606 of them on a 1 GiB EVTX file: +170 MB).
HELD_BYTES_PER_DETECTION = 200


def test_held_detections_take_little_memory_per_detection(
    windows_rules: CompiledRuleSet, sample_batches: list[pa.RecordBatch]
) -> None:
    analyzer = _analyzer(windows_rules, batch_events=1)  # evaluates (and holds) at once
    found = [(b, windows_rules.evaluate(b)) for b in sample_batches]
    gc.collect()
    tracemalloc.start()
    python_before, arrow_before = tracemalloc.get_traced_memory()[0], pa.total_allocated_bytes()
    for batch, hits in found:
        analyzer.add_hits(batch, hits)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - python_before
    held += pa.total_allocated_bytes() - arrow_before
    tracemalloc.stop()
    detections = len(analyzer._rows)
    assert detections > 1_000
    assert held / detections < HELD_BYTES_PER_DETECTION, (held, detections)
    assert len(list(analyzer._rows)) == detections

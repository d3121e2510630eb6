"""The Sigma analyzer's buffer: batches without the original record, same detections."""

from __future__ import annotations

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

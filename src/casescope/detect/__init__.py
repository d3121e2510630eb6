"""Sigma detection: load rules with pySigma, compile them once, evaluate event batches.

Public API (see docs/sigma.md):

    load_rules(source) -> RuleLoad
        `source`: a folder tree or zip of Sigma YAML (SigmaHQ layout), or several of them.
        `.rules` (LoadedRule: pySigma rule, path, file sha256, YAML text), `.correlations`
        (LoadedCorrelation: path, parsed definition, pySigma correlation rule), `.failures`
        (RuleFailure: path, reason), `.ignored` (YAML files that are not rules).
    compile_rules(load) -> CompiledRuleSet
    load_or_compile(source, cache_dir) -> CompiledRuleSet
        Cached by content hash: sorted (path, sha256 of each YAML file) + engine and
        pipeline versions (`source_hash(source)`; `ruleset_hash(pairs)` for sets built
        from other storage).

    CompiledRuleSet
        .evaluate(batch: pa.RecordBatch with EVENT_SCHEMA) -> pa.Table(seq uint64, rule_id str)
            one row per (event, rule) hit, ordered by seq then rule
        .rules: list[CompiledRule]  id, title, level, status, tags (.attack: ATT&CK only),
            path, logsource, sha256 (file), content_hash (re-run a rule when it changes),
            variants, event_ids, channels, author, description
        .failed / .failures: list[RuleFailure]  every rule that did not load or compile
        .correlations: list[CompiledCorrelation]  references resolved to compiled rules
        .subset(rule_ids) -> CompiledRuleSet   the same rules, fewer of them
        .save(path) / CompiledRuleSet.load(path)   one pickle, automata included
        .hash   the content hash when built through `load_or_compile`

    render_details(template, fields, aliases=None) -> str
        Hayabusa's `details` line of a hit (`CompiledRule.details`, `rules.details`):
        each `%Name%` is the event's value of that field (`n/a` when it has none)

    Correlations (event_count, value_count, temporal, temporal_ordered):
        needed_fields(correlations) -> {rule id: field names its detections must carry}
        detection_frame(batch, hits, names) -> pl.DataFrame(ts, seq, rule_id, <names>…)
        correlate(correlations, detections) -> list[CorrelationHit]
            `detections`: those frames concatenated, plus an `event` column (any event
            reference the caller wants back in each hit)

Matching semantics and speed: docs/sigma.md.

The package imports nothing: each name is imported from its module, so that code needing one
of them (an enum for a command's options) does not import pySigma, polars and the engine
with it (bench/cli.py):

- `cache`: load_or_compile, ruleset_hash, source_hash
- `correlate`: CorrelationHit, correlate
- `correlations`: CompiledCorrelation, detection_frame, needed_fields
- `details`: render_details
- `engine`: HITS_SCHEMA, CompiledRuleSet, compile_rules
- `load`: LoadedCorrelation, LoadedRule, RuleFailure, RuleLoad, load_document, load_rules
- `rules`: ENGINE_VERSION, CompiledRule
"""

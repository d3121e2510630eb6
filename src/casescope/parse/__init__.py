"""Evidence parsers: every format becomes Arrow batches of one schema (`parse.schema`).

Public API (the package imports nothing: each name is imported from its module, so that
code needing the schema or a constant does not import every parser with it, bench/cli.py):

- `sniff.detect_file_type(path) -> FileType`: the format, from the file's content (and
  `sniff.file_type_of(first_bytes)`, from its first `SAMPLE_BYTES + 1` bytes);
- `files.iter_batches(path, file_type, report, *, batch_size, field_map, max_line_bytes)`:
  stream a file as `pyarrow.RecordBatch`es of exactly `EVENT_SCHEMA`, `seq` continuous from 0;
- `files.estimate_events(path, file_type) -> int`: a cheap event count for progress bars;
- `report.ParseReport`: warnings (capped), skipped records and a fatal per-file error.

The rules (formats, fields, timestamps) are in docs/parsing.md and the module docstrings.
"""

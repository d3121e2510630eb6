"""`casescope migrate`: copy a deployment into another in phases (docs/migration.md).

`endpoints` resolves and opens the source (read-only, from private copies) and the target;
`phases` says which table belongs to which phase and how its rows are normalised; `rows`
copies the metadata phases with checkpoints; `events` copies evidence and segments and loads
them into the target's index; `verify` compares both sides; `plan` sizes the work; `runner`
ties them together for the CLI.
"""

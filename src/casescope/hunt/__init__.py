"""IOC hunting: normalise and import indicators, match them on event batches, hunt the index.

See docs/ioc.md for the matching rules of each type.

The package imports nothing: each name is imported from its module, so that code needing one
of them (an enum for a command's options) does not import polars and the matcher with it
(bench/cli.py):

- `ioc`: TOKEN_TYPES, Ioc, IocError, IocType
- `lists`: IocImport, IocLineError, parse_ioc_csv, parse_ioc_list
- `matcher`: HIT_SCHEMA, IocMatcher, compile_iocs
- `normalise`: infer_type, normalise
- `refang`: refang
- `sql`: INDEX_HIT_SCHEMA, IocSql, hunt_chdb, hunt_queries, ioc_hunt_sql
"""

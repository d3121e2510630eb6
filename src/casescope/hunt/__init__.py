"""IOC hunting: normalise and import indicators, match them on event batches, hunt the index.

See docs/ioc.md for the matching rules of each type.
"""

from casescope.hunt.ioc import TOKEN_TYPES, Ioc, IocError, IocType
from casescope.hunt.lists import IocImport, IocLineError, parse_ioc_csv, parse_ioc_list
from casescope.hunt.matcher import HIT_SCHEMA, IocMatcher, compile_iocs
from casescope.hunt.normalise import infer_type, normalise
from casescope.hunt.refang import refang
from casescope.hunt.sql import INDEX_HIT_SCHEMA, IocSql, hunt_chdb, hunt_queries, ioc_hunt_sql

__all__ = [
    "HIT_SCHEMA",
    "INDEX_HIT_SCHEMA",
    "TOKEN_TYPES",
    "Ioc",
    "IocError",
    "IocImport",
    "IocLineError",
    "IocMatcher",
    "IocSql",
    "IocType",
    "compile_iocs",
    "hunt_chdb",
    "hunt_queries",
    "infer_type",
    "ioc_hunt_sql",
    "normalise",
    "parse_ioc_csv",
    "parse_ioc_list",
    "refang",
]

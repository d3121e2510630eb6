"""Every table of the metadata DB is copied in a phase or left out on purpose."""

from __future__ import annotations

import casescope.model  # noqa: F401  (every table in Base.metadata)
from casescope.migrate.keys import references
from casescope.migrate.phases import NOT_COPIED, TABLE_PHASES, Phase, tables_of
from casescope.model.tables import Base


def test_every_table_has_a_phase_or_a_reason_to_be_left_out() -> None:
    names = {table.name for table in Base.metadata.sorted_tables}
    missing = names - set(TABLE_PHASES) - set(NOT_COPIED)
    assert not missing, f"tables with no migration phase: {sorted(missing)}"
    assert not set(TABLE_PHASES) & set(NOT_COPIED)
    assert set(TABLE_PHASES) | set(NOT_COPIED) <= names, "a phase names a table that is gone"


def test_a_phase_copies_parents_before_children() -> None:
    order = [table.name for phase in Phase for table in tables_of(phase)]
    position = {name: at for at, name in enumerate(order)}
    for phase in Phase:
        for table in tables_of(phase):
            for key in table.foreign_keys:
                parent = key.column.table.name
                assert position[parent] < position[table.name], (parent, table.name)


def test_every_id_column_moves_with_the_keys() -> None:
    """A copied column that names another row's id is in `keys.references`, so a case
    brought in under new keys (`--as`, `case import`) keeps pointing at its own rows."""
    not_keys = {"record_id"}  # an event's EVTX record number
    for phase in Phase:
        for table in tables_of(phase):
            named = {
                column.name
                for column in table.columns
                if (column.name.endswith("_id") or column.name == "excluded_by")
                and column.type.python_type is int
            } - not_keys
            assert named <= set(references(table)), (table.name, named - set(references(table)))

"""A load's rows as one Arrow table in the events table's columns, read from Parquet here.

A ClickHouse server cannot read a worker's files, so `ClickHouseServerIndex` reads the
segments (or group bundles) itself and sends the rows. It produces exactly what chDB's
`INSERT … SELECT … FROM file(…)` in `ChdbIndex.load` does: the item's case and file ids in
front, a missing time as the epoch, a slice's rows only (row groups outside it are not read:
their `seq` statistics say so). The loader bounds one load in rows and bytes
(store/loader.py), as for chDB, so one table is what one INSERT holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from casescope.store.events_sql import LoadItem
from casescope.store.events_table import EVENT_COLUMNS
from casescope.store.segments import segment_files

_SEGMENT_COLUMNS = list(EVENT_COLUMNS[2:])
_EPOCH = pa.scalar(0, pa.timestamp("us", tz="UTC"))


def _overlaps(meta: pq.RowGroupMetaData, seq_index: int, item: LoadItem) -> bool:
    """Whether a row group may hold rows of `item`'s slice (no statistics: it may)."""
    stats = meta.column(seq_index).statistics
    if stats is None or not stats.has_min_max:
        return True
    below_end = item.seq_to is None or stats.min < item.seq_to
    return below_end and stats.max >= item.seq_from


def _read_part(path: Path, item: LoadItem) -> pa.Table:
    """The rows of `item` in one Parquet file of its segment."""
    reader = pq.ParquetFile(path)
    groups = list(range(reader.num_row_groups))
    if item.is_slice:
        seq_index = reader.schema_arrow.get_field_index("seq")
        groups = [g for g in groups if _overlaps(reader.metadata.row_group(g), seq_index, item)]
    table = reader.read_row_groups(groups, columns=_SEGMENT_COLUMNS)
    if item.is_slice:
        keep = pc.greater_equal(table["seq"], item.seq_from)
        if item.seq_to is not None:
            keep = pc.and_(keep, pc.less(table["seq"], item.seq_to))
        table = table.filter(keep)
    return table


def _with_ids(table: pa.Table, case_id: int, file_id: int) -> pa.Table:
    """`table` with its case and file in front and a missing time as the epoch."""
    rows = table.num_rows
    table = table.set_column(
        table.schema.get_field_index("ts"), "ts", pc.fill_null(table["ts"], _EPOCH)
    )
    table = table.add_column(0, "file_id", pa.array([file_id] * rows, pa.uint64()))
    return table.add_column(0, "case_id", pa.array([case_id] * rows, pa.uint32()))


def _concat(tables: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(tables, promote_options="permissive").combine_chunks()


def items_table(items: Sequence[LoadItem]) -> pa.Table:
    """The rows of `items` (whole segments, or one slice), in the events table's columns."""
    tables = [
        _with_ids(_read_part(path, item), item.case_id, item.file_id)
        for item in items
        for path in segment_files(item.segment_path)
    ]
    return _concat(tables).select(list(EVENT_COLUMNS))


def bundles_table(bundles: Mapping[Path, Sequence[LoadItem]]) -> pa.Table:
    """Each listed file's rows from the bundle it is listed under, and no other rows of it
    (a bundle may hold older events of a file since re-indexed, or another worker's file)."""
    tables = []
    for path, items in bundles.items():
        table = pq.read_table(path, columns=list(EVENT_COLUMNS))
        wanted = pa.array(sorted({item.file_id for item in items}), pa.uint64())
        table = table.filter(pc.is_in(table["file_id"].cast(pa.uint64()), value_set=wanted))
        tables.append(
            table.set_column(
                table.schema.get_field_index("ts"), "ts", pc.fill_null(table["ts"], _EPOCH)
            )
        )
    return _concat(tables)

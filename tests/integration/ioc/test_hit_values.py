"""The matched value kept with each IOC hit (`jobs.analyzers._field_values`)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from casescope.jobs.analyzers import _field_values
from casescope.parse.schema import EVENT_SCHEMA
from tests.integration.test_loader import make_batch


def _with_fields(batch: pa.RecordBatch, maps: list[list[tuple[str, str | None]]]) -> pa.RecordBatch:
    index = EVENT_SCHEMA.get_field_index("fields")
    fields = pa.array(maps, EVENT_SCHEMA.field("fields").type)
    return batch.set_column(index, EVENT_SCHEMA.field("fields"), fields)


def test_values_of_core_columns_map_keys_repeats_and_gaps() -> None:
    batch = _with_fields(
        make_batch(3, "v"),
        [
            [("Image", "C:\\a.exe"), ("Image", "C:\\second.exe"), ("CommandLine", "a -x")],
            [("CommandLine", None)],
            [("Image", "<img src=x onerror=alert(1)>")],
        ],
    )
    rows = np.array([0, 0, 1, 1, 2, 2, 0])
    names = ["Image", "CommandLine", "CommandLine", "Image", "Image", "computer", "computer"]
    assert _field_values(batch, rows, names) == [
        "C:\\a.exe",  # the first of a repeated key
        "a -x",
        "",  # a null value
        "",  # a key the event does not have
        "<img src=x onerror=alert(1)>",  # kept as is: escaping is the page's job
        "PC1",  # a core column
        "PC1",
    ]
    assert _field_values(batch, np.array([], dtype=np.int64), []) == []

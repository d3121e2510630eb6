"""The Aho-Corasick literal pass against a plain Python reference, on random text."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from casescope.detect.atoms import Atom, Kind
from casescope.detect.columns import field_text
from casescope.detect.literals import LiteralTable

KINDS = (Kind.EQ, Kind.PREFIX, Kind.SUFFIX, Kind.CONTAINS)
TEXT = st.text(alphabet="ab\\é", max_size=6)
TESTS = {
    Kind.EQ: lambda v, t: v == t,
    Kind.PREFIX: str.startswith,
    Kind.SUFFIX: str.endswith,
    Kind.CONTAINS: lambda v, t: t in v,
}


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(TEXT, max_size=8),
    atoms=st.lists(st.tuples(st.sampled_from(KINDS), TEXT.filter(bool)), min_size=1, max_size=8),
)
def test_match_equals_the_reference(values: list[str], atoms: list[tuple[Kind, str]]) -> None:
    table = LiteralTable([Atom("f", kind, text) for kind, text in atoms], {"f": 0})
    text = field_text(pa.array(values, pa.string()))
    ends, numbers = table.scan(text.text, [(0, 0, len(text.text))])
    keys = table.match(ends, numbers, text.offsets)
    width = len(values) + 1
    found = set(zip((keys // width).tolist(), (keys % width).tolist(), strict=True))
    reference = {
        (atom_id, index)
        for atom_id, (kind, pattern) in enumerate(atoms)
        for index, value in enumerate(values)
        if TESTS[kind](value, pattern)
    }
    assert found == reference
    assert np.all(np.diff(keys) > 0)

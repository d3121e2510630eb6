"""Small-value kernels agree with the RE2 kernels they stand in for.

`values.regex_mask` searches a few values with Python's `re` (pattern compiled once) when
the pattern has an `ascii_twin` and every value is `plain`; field references compare a few
pairs in Python. Checked here on every regex and glob of the snapshot, against pyarrow's
RE2 on the attack samples' values (as written and lowercased) and on hand-made edge cases.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from casescope.detect.atoms import FieldRefOp, Kind
from casescope.detect.engine import CompiledRuleSet
from casescope.detect.values import (
    ascii_twin,
    bools,
    fieldref_mask,
    plain,
    regex_mask,
)
from casescope.model.enums import FileType
from casescope.parse.files import iter_batches
from casescope.parse.report import ParseReport

EDGES = [
    "",
    "a",
    "abc\n",
    "line\nline",
    "tab\tand\x0bvtab",
    "end$",
    "x{,3}",
    "[:alpha:]",
    "C:\\Windows\\System32\\cmd.exe /c whoami",
    'cmd.exe /c "echo 1 > \\\\127.0.0.1\\admin$\\x"',
    "0123456789",
    "UPPER lower _",
]
NON_PLAIN = ["caf\u00e9", "\u212a", "\u017f", "a\nb", "v\x0bt"]


@pytest.fixture(scope="module")
def values(attack_samples: Path) -> list[str]:
    """Every 3rd distinct map value of the attack samples, as written and lowercased."""
    seen: set[str] = set()
    for path in sorted(attack_samples.rglob("*.evtx"))[::2]:
        for batch in iter_batches(path, FileType.EVTX, ParseReport()):
            items = batch.column("fields").items.drop_null()
            seen.update(items.to_pylist())
    chosen = sorted(seen)[::3]
    return [*chosen, *(v.lower() for v in chosen), *EDGES]


def _patterns(snapshot: CompiledRuleSet) -> list[str]:
    kinds = (Kind.REGEX, Kind.GLOB)
    return sorted({a.text for a in snapshot.atoms.atoms if a.kind in kinds and not a.python})


def test_twins_agree_with_re2_on_plain_values(snapshot: CompiledRuleSet, values: list[str]) -> None:
    strings = [v for v in values if plain(v)]
    array = pa.array(strings, pa.string())
    patterns = _patterns(snapshot)
    twins = 0
    for pattern in patterns:
        twin = ascii_twin(pattern)
        if twin is None:
            continue
        twins += 1
        expected = bools(pc.match_substring_regex(array, pattern))
        got = np.fromiter((twin.search(s) is not None for s in strings), bool, len(strings))
        wrong = [s for s, g, e in zip(strings, got, expected, strict=True) if g != e]
        assert not wrong, (pattern, wrong[:5])
    assert twins > 0.9 * len(patterns)


@pytest.mark.parametrize("extra", [[], NON_PLAIN, [None]])
def test_regex_mask_routes_to_an_equal_answer(snapshot: CompiledRuleSet, extra: list) -> None:
    strings = [*EDGES, "c:\\users\\x\\appdata\\roaming\\a.exe -enc aqbfafgacab", *extra]
    for pattern in _patterns(snapshot)[::5]:
        expected = bools(pc.match_substring_regex(pa.array(strings, pa.string()), pattern))
        assert (regex_mask(strings, pattern, python=False) == expected).all(), pattern
        assert (regex_mask(pa.array(strings, pa.string()), pattern, False) == expected).all()


def test_unsafe_patterns_have_no_twin() -> None:
    assert ascii_twin("a{,3}") is None  # RE2: literal "{,3}"; Python: {0,3}
    assert ascii_twin("[[:digit:]]") is None  # RE2: POSIX class
    assert ascii_twin("a(?<name>b)") is None  # Python 3.11 cannot compile it
    assert ascii_twin(r"\x{41}") is None
    assert ascii_twin(r"(?i)cmd\.exe$") is not None


@pytest.mark.parametrize("op", list(FieldRefOp))
def test_fieldref_small_and_polars_paths_agree(
    op: FieldRefOp, monkeypatch: pytest.MonkeyPatch
) -> None:
    left = ["abc", "abc", "abc", "", "x", None, "abc"]
    right = ["abc", "ab", "bc", "", "", "x", None]
    small = fieldref_mask(op, left, right)
    monkeypatch.setattr("casescope.detect.values.SMALL_VALUES", -1)
    large = fieldref_mask(op, pa.array(left, pa.string()), pa.array(right, pa.string()))
    assert small.tolist() == large.tolist()

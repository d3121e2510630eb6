"""Session fixtures: the snapshot's Windows rules (compiled, cached on disk) and the
attack samples parsed into batches."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from casescope.detect.cache import load_or_compile
from casescope.detect.engine import CompiledRuleSet
from casescope.model.enums import FileType
from casescope.parse.files import iter_batches
from casescope.parse.report import ParseReport
from tests.unit.detect.support import cache_dir


@pytest.fixture(scope="session")
def windows_rules(sigma_dir: Path, request: pytest.FixtureRequest) -> CompiledRuleSet:
    cache = cache_dir(request)
    return load_or_compile(sigma_dir / "rules" / "windows", cache)


@pytest.fixture(scope="session")
def sample_batches(attack_samples: Path) -> list[pa.RecordBatch]:
    """One batch per attack-sample file, as ingest produces them."""
    return [
        batch
        for path in sorted(attack_samples.rglob("*.evtx"))
        for batch in iter_batches(path, FileType.EVTX, ParseReport())
    ]
